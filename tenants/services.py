"""All writes to orgs, memberships, invitations, service accounts and tokens. Each function is one
transaction that writes the change and its audit event together."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from tenants.choices import Role
from tenants.models import ApiToken, Membership, Org, ServiceAccount
from tenants.tokens import display_prefix, generate_token, hash_token


class ServiceError(Exception):
    """A refused write, with a message for the person and the field it concerns."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def token_summary(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "prefix": token.prefix,
        "kind": token.kind,
        "service_account": token.service_account.name if token.service_account_id else None,
        "user_id": token.user_id,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


@transaction.atomic
def create_org(ctx: AuditContext, slug: str, name: str, owner) -> Org:
    if Org.objects.filter(slug=slug).exists():
        raise ServiceError(f"An org with the slug '{slug}' already exists.", field="slug", code="conflict")
    org = Org(slug=slug, name=name or slug)
    org.full_clean()
    org.save()
    record_event(ctx, org, AuditAction.ORG_CREATED, org, after={"slug": org.slug, "name": org.name})
    membership = Membership.objects.create(org=org, user=owner, role=Role.OWNER)
    record_event(ctx, org, AuditAction.MEMBER_ADDED, ("user", owner.pk, owner.email or owner.get_username()),
                 after={"role": membership.role})
    return org


@transaction.atomic
def create_service_account(ctx: AuditContext, org: Org, name: str, role: str, description: str = "",
                           created_by=None) -> ServiceAccount:
    if ServiceAccount.objects.filter(org=org, name=name).exists():
        raise ServiceError(f"A service account named '{name}' already exists.", field="name", code="conflict")
    if role == Role.OWNER:
        raise ServiceError("A service account cannot be an owner.", field="role")
    account = ServiceAccount(org=org, name=name, role=role, description=description, created_by=created_by)
    account.full_clean()
    account.save()
    record_event(ctx, org, AuditAction.SERVICE_ACCOUNT_CREATED, account,
                 after={"name": name, "role": role, "description": description})
    return account


@transaction.atomic
def create_api_token(ctx: AuditContext, org: Org, name: str, *, service_account: ServiceAccount | None = None,
                     user=None, expires_at=None, created_by=None) -> tuple[ApiToken, str]:
    """Create a token; returns (row, plaintext). The plaintext exists only in this return value."""
    if (service_account is None) == (user is None):
        raise ValueError("a token belongs to exactly one service account or one user")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("The expiry must be in the future.", field="expires_at")
    plaintext = generate_token()
    token = ApiToken.objects.create(
        org=org, service_account=service_account, user=user, name=name, prefix=display_prefix(plaintext),
        token_hash=hash_token(plaintext), expires_at=expires_at, created_by=created_by,
    )
    record_event(ctx, org, AuditAction.TOKEN_CREATED, token, after=token_summary(token))
    return token, plaintext


def get_or_create_user(email: str):
    """(user, created) for an email address; a new user gets an unusable password until one is set."""
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    user = User(username=email.lower()[:150], email=email.lower())
    user.set_unusable_password()
    user.save()
    return user, True
