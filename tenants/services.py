"""All writes to orgs, memberships, invitations, service accounts and tokens. Each function is one
transaction that writes the change and its audit event together."""

import ipaddress
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from tenants.choices import Role
from tenants.models import ApiToken, Invitation, Membership, Org, ServiceAccount, UserSettings
from tenants.permissions import has_permission
from tenants.tokens import display_prefix, generate_token, hash_token


def token_summary(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "prefix": token.prefix,
        "kind": token.kind,
        "service_account": token.service_account.name if token.service_account_id else None,
        "user_id": token.user_id,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        **token_scope(token),
    }


def token_scope(token: ApiToken) -> dict:
    """The token's limits, as audited and as copied by a rotation (empty lists: not limited)."""
    return {"scope_environments": list(token.scope_environments), "scope_flows": list(token.scope_flows),
            "read_only": token.read_only, "allowed_networks": list(token.allowed_networks)}


# The name rules of environments (snapshots.models.env_name_validator) and flows (evidence.services.NAME),
# repeated here because tenants sits below both apps. A scope may name one that does not exist yet (an
# agent creates its environment with ``--auto-environment``), so only the syntax is checked.
_SCOPE_NAME_RULES = {
    "scope_environments": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"), "environment",
                           "1-100 letters, digits, dots, underscores and hyphens, starting with a letter or digit"),
    "scope_flows": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~@:+-]{0,119}$"), "flow",
                    "1-120 letters, digits and . _ ~ @ : + -, starting with a letter or digit"),
}
MAX_SCOPE_ENTRIES = 100


def _scope_names(field: str, names) -> list[str]:
    pattern, noun, rule = _SCOPE_NAME_RULES[field]
    if isinstance(names, str):
        names = [names]
    cleaned = []
    for name in names or []:
        name = name.strip() if isinstance(name, str) else name
        if not name:
            continue
        if not isinstance(name, str) or not pattern.match(name):
            raise ServiceError(f"{str(name)[:60]!r} is not a valid {noun} name: use {rule}.", field=field)
        if name not in cleaned:
            cleaned.append(name)
    if len(cleaned) > MAX_SCOPE_ENTRIES:
        raise ServiceError(f"A token may name at most {MAX_SCOPE_ENTRIES} {noun}s.", field=field)
    return cleaned


def _networks(values) -> list[str]:
    """CIDR strings, parsed with ``ipaddress``; a network with host bits set (10.0.0.5/24) is refused, as it
    is almost always a typo for the host or the network. A bare address is a /32 (/128)."""
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    cleaned = []
    for value in values or []:
        value = value.strip() if isinstance(value, str) else value
        if not value:
            continue
        if not isinstance(value, str):
            raise ServiceError(f"{str(value)[:60]!r} is not a network: use CIDR notation like 203.0.113.0/24.",
                               field="allowed_networks")
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ServiceError(f"{value[:60]!r} is not a network: use CIDR notation like 203.0.113.0/24.",
                                   field="allowed_networks") from None
            raise ServiceError(f"{value[:60]!r} has host bits set ({error}); write the network, e.g. "
                               f"{ipaddress.ip_network(value, strict=False)}, or the single address as "
                               f"{value.split('/')[0]}/{32 if ':' not in value else 128}.",
                               field="allowed_networks") from None
        if str(network) not in cleaned:
            cleaned.append(str(network))
    if len(cleaned) > MAX_SCOPE_ENTRIES:
        raise ServiceError(f"A token may name at most {MAX_SCOPE_ENTRIES} networks.", field="allowed_networks")
    return cleaned


def clean_token_scope(*, scope_environments=(), scope_flows=(), read_only=False, allowed_networks=()) -> dict:
    """Validated scope fields for ``ApiToken`` (ServiceError naming the field otherwise)."""
    return {"scope_environments": _scope_names("scope_environments", scope_environments),
            "scope_flows": _scope_names("scope_flows", scope_flows),
            "read_only": bool(read_only),
            "allowed_networks": _networks(allowed_networks)}


@transaction.atomic
def create_org(ctx: AuditContext, slug: str, name: str, owner, *, is_demo: bool = False) -> Org:
    """Create an org owned by ``owner``. ``is_demo`` marks an org of sample data (``create_demo``)."""
    if Org.objects.filter(slug=slug).exists():
        raise ServiceError(f"An org with the slug '{slug}' already exists.", field="slug", code="conflict")
    org = Org(slug=slug, name=name or slug, is_demo=is_demo)
    org.full_clean()
    org.save()
    record_event(ctx, org, AuditAction.ORG_CREATED, org, after={"slug": org.slug, "name": org.name,
                                                                **({"is_demo": True} if is_demo else {})})
    membership = Membership.objects.create(org=org, user=owner, role=Role.OWNER)
    record_event(ctx, org, AuditAction.MEMBER_ADDED, ("user", owner.pk, owner.email or owner.get_username()),
                 after={"role": membership.role})
    return org


@transaction.atomic
def create_service_account(ctx: AuditContext, org: Org, name: str, role: str, description: str = "",
                           created_by=None) -> ServiceAccount:
    if ServiceAccount.objects.filter(org=org, name=name, deactivated_at__isnull=True).exists():
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
                     user=None, expires_at=None, created_by=None, scope_environments=(), scope_flows=(),
                     read_only=False, allowed_networks=()) -> tuple[ApiToken, str]:
    """Create a token; returns (row, plaintext). The plaintext exists only in this return value.

    The scope (docs/identity.md, "Scoped tokens"): environment and flow names (syntax checked, they need
    not exist yet), read-only, and the client networks (CIDR) it may be used from; empty means unlimited."""
    if (service_account is None) == (user is None):
        raise ValueError("a token belongs to exactly one service account or one user")
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("The expiry must be in the future.", field="expires_at")
    if service_account is not None and service_account.deactivated_at is not None:
        raise ServiceError("This service account is deactivated.", code="conflict")
    if not (name or "").strip():
        raise ServiceError("Give the token a name.", field="name")
    if len(name) > 100:
        raise ServiceError("Use at most 100 characters.", field="name")
    scope = clean_token_scope(scope_environments=scope_environments, scope_flows=scope_flows,
                              read_only=read_only, allowed_networks=allowed_networks)
    plaintext = generate_token()
    token = ApiToken.objects.create(
        org=org, service_account=service_account, user=user, name=name, prefix=display_prefix(plaintext),
        token_hash=hash_token(plaintext), expires_at=expires_at, created_by=created_by, **scope,
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


# --- helpers ----------------------------------------------------------------------------------------

def _user_label(user) -> str:
    return user.email or user.get_username()


def _member_target(membership: Membership) -> tuple:
    return ("user", membership.user_id, _user_label(membership.user))


def _require_owner_rights(actor_role: str | None, action: str) -> None:
    """Granting or taking away the owner role needs ``owners.manage``; admins may not."""
    if actor_role is not None and not has_permission(actor_role, "owners.manage"):
        raise ServiceError(f"Only owners can {action}: your role '{actor_role}' lacks the permission "
                           "'owners.manage'.", field="role", code="forbidden")


def _lock_org(org: Org) -> Org:
    """Lock the org row: membership changes of one org happen one at a time, so the owner count
    checked below cannot be raced by a concurrent removal."""
    return Org.objects.select_for_update().get(pk=org.pk)


def _owner_count(org: Org) -> int:
    return Membership.objects.filter(org=org, role=Role.OWNER).count()


# --- orgs ---------------------------------------------------------------------------------------------

@transaction.atomic  # also called inside the admin's own transaction
def update_org(ctx: AuditContext, org: Org, *, name: str) -> Org:
    org = _lock_org(org)
    name = (name or "").strip()
    if not name:
        raise ServiceError("The name may not be empty.", field="name")
    if len(name) > 200:
        raise ServiceError("Use at most 200 characters.", field="name")
    if name == org.name:
        return org
    before = {"name": org.name}
    org.name = name
    org.save(update_fields=["name"])
    record_event(ctx, org, AuditAction.ORG_UPDATED, org, before=before, after={"name": name})
    return org


RETENTION_FIELDS = ("report_body_retention_days", "evidence_file_retention_days")
RETENTION_MAX_DAYS = 3650  # ten years; longer than that is "keep forever" (None)


@transaction.atomic
def set_retention(ctx: AuditContext, org: Org, **changes) -> Org:
    """Set the org's retention (docs/operations.md, "Retention"): each of ``RETENTION_FIELDS`` is None (keep
    forever) or a whole number of days from 1 to ``RETENTION_MAX_DAYS``. Fields not given stay as they are;
    a change records ``org.retention_changed`` with before and after."""
    for field, value in changes.items():
        if field not in RETENTION_FIELDS:
            raise ServiceError(f"Unknown retention setting {field!r}.", field=field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 1 <= value <= RETENTION_MAX_DAYS):
            raise ServiceError(f"Enter a whole number of days from 1 to {RETENTION_MAX_DAYS}, or nothing to keep "
                               "forever.", field=field)
    org = _lock_org(org)
    changed = {field: value for field, value in changes.items() if getattr(org, field) != value}
    if not changed:
        return org
    before = {field: getattr(org, field) for field in changed}
    for field, value in changed.items():
        setattr(org, field, value)
    org.save(update_fields=list(changed))
    record_event(ctx, org, AuditAction.ORG_RETENTION_CHANGED, org, before=before, after=changed)
    return org


# --- members ------------------------------------------------------------------------------------------

@transaction.atomic(durable=True)
def change_role(ctx: AuditContext, membership: Membership, role: str, *, actor_role: str | None) -> Membership:
    """Change a member's role. Owner changes need ``owners.manage``; the last owner stays an owner."""
    if role not in Role.values:
        raise ServiceError(f"Unknown role '{role}'.", field="role")
    org = _lock_org(membership.org)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == role:
        return membership
    if Role.OWNER in (role, membership.role):
        _require_owner_rights(actor_role, "grant or take away the owner role")
    if membership.role == Role.OWNER and _owner_count(org) <= 1:
        raise ServiceError("An org must keep at least one owner; make someone else an owner first.",
                           field="role", code="conflict")
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    record_event(ctx, org, AuditAction.MEMBER_ROLE_CHANGED, _member_target(membership), before=before,
                 after={"role": role})
    return membership


@transaction.atomic(durable=True)
def remove_member(ctx: AuditContext, membership: Membership, *, actor_role: str | None) -> None:
    """Remove a member (and revoke their personal tokens in the org). Never the last owner."""
    org = _lock_org(membership.org)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == Role.OWNER:
        _require_owner_rights(actor_role, "remove an owner")
        if _owner_count(org) <= 1:
            raise ServiceError("An org must keep at least one owner; this is the last one.", code="conflict")
    target = _member_target(membership)
    before = {"role": membership.role}
    _revoke_tokens(ctx, ApiToken.objects.filter(org=org, user_id=membership.user_id), "member removed")
    membership.delete()
    record_event(ctx, org, AuditAction.MEMBER_REMOVED, target, before=before)


def _revoke_tokens(ctx: AuditContext, tokens, reason: str) -> int:
    """Revoke every live token of ``tokens``, each with its own ``token.revoked`` event (in the caller's
    transaction), so the audit log shows which tokens stopped working and why. Returns how many."""
    now = timezone.now()
    live = tokens.select_for_update(of=("self",)).select_related("service_account", "org").filter(
        revoked_at__isnull=True).order_by("pk")
    count = 0
    for token in live:
        before = token_summary(token)
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        record_event(ctx, token.org, AuditAction.TOKEN_REVOKED, token, before=before,
                     after={**token_summary(token), "reason": reason})
        count += 1
    return count


# --- invitations --------------------------------------------------------------------------------------

def invitation_url(plaintext: str) -> str:
    return settings.CSM_BASE_URL + reverse("invitation-accept", args=[plaintext])


def _send_invitation(invitation: Invitation, plaintext: str, inviter_label: str) -> None:
    link = invitation_url(plaintext)
    body = render_to_string("tenants/email/invitation.txt", {
        "invitation": invitation, "org": invitation.org, "link": link, "inviter": inviter_label,
        "hours": settings.CSM_INVITATION_TTL_HOURS,
    })
    send_mail(f"You are invited to {invitation.org.name} on csm", body, None, [invitation.email])


@transaction.atomic(durable=True)
def invite_member(ctx: AuditContext, org: Org, email: str, role: str, *, actor_role: str | None,
                  invited_by=None) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role``; returns (invitation, secret). The link is emailed on commit.
    An earlier pending invitation of the same address is revoked (the new one replaces it)."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ServiceError("Enter a valid email address.", field="email") from None
    if role not in Role.values:
        raise ServiceError(f"Unknown role '{role}'.", field="role")
    if role == Role.OWNER:
        _require_owner_rights(actor_role, "invite an owner")
    org = _lock_org(org)
    if Membership.objects.filter(org=org, user__email__iexact=email).exists():
        raise ServiceError(f"{email} is already a member of this org.", field="email", code="conflict")
    now = timezone.now()
    for earlier in Invitation.objects.filter(org=org, email__iexact=email, accepted_at__isnull=True,
                                             revoked_at__isnull=True, expires_at__gt=now):
        _revoke_invitation(ctx, earlier, now)
    plaintext = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        org=org, email=email, role=role, token_hash=hash_token(plaintext), invited_by=invited_by,
        created_at=now, expires_at=now + timedelta(hours=settings.CSM_INVITATION_TTL_HOURS),
    )
    record_event(ctx, org, AuditAction.INVITATION_CREATED, ("invitation", invitation.pk, email),
                 after={"email": email, "role": role, "expires_at": invitation.expires_at})
    transaction.on_commit(lambda: _send_invitation(invitation, plaintext, ctx.actor_label))
    return invitation, plaintext


def find_invitation(plaintext: str) -> Invitation | None:
    if not plaintext:
        return None
    return Invitation.objects.select_related("org").filter(token_hash=hash_token(plaintext)).first()


def _revoke_invitation(ctx: AuditContext, invitation: Invitation, now) -> None:
    invitation.revoked_at = now
    invitation.save(update_fields=["revoked_at"])
    record_event(ctx, invitation.org, AuditAction.INVITATION_REVOKED, ("invitation", invitation.pk, invitation.email),
                 before={"status": "pending"}, after={"status": "revoked"})


@transaction.atomic(durable=True)
def revoke_invitation(ctx: AuditContext, invitation: Invitation) -> Invitation:
    invitation = Invitation.objects.select_for_update().select_related("org").get(pk=invitation.pk)
    if invitation.status != "pending":
        raise ServiceError(f"This invitation is already {invitation.status}.", code="conflict")
    _revoke_invitation(ctx, invitation, timezone.now())
    return invitation


@transaction.atomic(durable=True)
def accept_invitation(ctx: AuditContext, plaintext: str, user) -> Membership:
    """Accept an invitation as ``user`` (whose email must be the invited one). Single use."""
    found = find_invitation(plaintext)
    if found is None:
        raise ServiceError("This invitation link is not valid.", code="not_found")
    _lock_org(found.org)
    invitation = Invitation.objects.select_for_update().select_related("org").get(pk=found.pk)
    if invitation.status != "pending":
        raise ServiceError(f"This invitation is {invitation.status}; ask for a new one.", code="conflict")
    if (user.email or "").lower() != invitation.email.lower():
        raise ServiceError(f"This invitation is for {invitation.email}; you are signed in as {_user_label(user)}.",
                           code="forbidden")
    org = invitation.org
    if Membership.objects.filter(org=org, user=user).exists():
        raise ServiceError("You are already a member of this org.", code="conflict")
    membership = Membership.objects.create(org=org, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record_event(ctx, org, AuditAction.INVITATION_ACCEPTED, ("invitation", invitation.pk, invitation.email),
                 before={"status": "pending"}, after={"status": "accepted"})
    record_event(ctx, org, AuditAction.MEMBER_ADDED, _member_target(membership),
                 after={"role": membership.role, "invitation": invitation.pk})
    return membership


# --- users --------------------------------------------------------------------------------------------

SIGN_UP_SALT = "csm.tenants.sign-up"


def _account_exists(email: str) -> bool:
    User = get_user_model()
    return User.objects.filter(email__iexact=email).exists() or User.objects.filter(username=email).exists()


def request_sign_up(email: str) -> None:
    """Email ``email`` a link to finish creating an account there — or, when an account already uses the
    address, a note saying so with links to sign in and reset the password. The page after sign-up is
    the same either way, so it never tells a stranger whether an address has an account (as password
    reset does). The link is signed (no row is stored) and carries only the address; the password is
    chosen on the page it opens, after the person proved they read this mailbox."""
    email = (email or "").strip().lower()
    if _account_exists(email):
        body = render_to_string("tenants/email/sign_up_existing.txt", {
            "email": email, "login": settings.CSM_BASE_URL + reverse("login"),
            "reset": settings.CSM_BASE_URL + reverse("password-reset"),
        })
        send_mail("Your csm account", body, None, [email])
        return
    secret = signing.dumps(email, salt=SIGN_UP_SALT)
    body = render_to_string("tenants/email/sign_up.txt", {
        "email": email, "link": settings.CSM_BASE_URL + reverse("signup-finish", args=[secret]),
        "hours": settings.CSM_SIGNUP_LINK_TTL_HOURS,
    })
    send_mail("Finish creating your csm account", body, None, [email])


def sign_up_link_email(secret: str) -> str | None:
    """The address a sign-up link was sent to, or None when the link is forged or expired."""
    try:
        return signing.loads(secret, salt=SIGN_UP_SALT, max_age=settings.CSM_SIGNUP_LINK_TTL_HOURS * 3600)
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None


@transaction.atomic(durable=True)
def sign_up(email: str, password: str):
    """Create a person's account. Not org-scoped (no org yet), so there is no org audit event."""
    email = (email or "").strip().lower()
    User = get_user_model()
    if _account_exists(email):
        raise ServiceError("An account with this email address already exists; sign in instead.", field="email",
                           code="conflict")
    user = User(username=email[:150], email=email)
    user.set_password(password)
    user.save()
    return user


@transaction.atomic(durable=True)
def record_sign_in(ctx: AuditContext, user) -> None:
    """A sign-in is recorded in the audit log of every org the person belongs to."""
    for membership in Membership.objects.filter(user=user, suspended_at=None).select_related("org"):
        record_event(ctx, membership.org, AuditAction.USER_SIGNED_IN, ("user", user.pk, _user_label(user)))


def default_org(user) -> Org | None:
    """The org ``user`` chose to open after sign-in, while they still belong to it with a role that has
    web pages (``org.view``); None otherwise."""
    chosen = UserSettings.objects.filter(user=user).select_related("default_org").first()
    org = chosen.default_org if chosen is not None else None
    if org is None:
        return None
    membership = Membership.objects.filter(org=org, user=user, suspended_at=None).first()
    return org if membership is not None and has_permission(membership.role, "org.view") else None


@transaction.atomic(durable=True)
def set_default_org(ctx: AuditContext, user, org: Org) -> Org:
    """Make ``org`` the one the web app opens after ``user`` signs in (``kosli update default-org``). The
    user must be a member with a role that sees the org's pages. The change is recorded in the new default
    org's audit log (and in the previous one's, when it was another org the user still belongs to)."""
    membership = Membership.objects.filter(org=org, user=user, suspended_at=None).first()
    if membership is None:
        raise ServiceError(f"You are not a member of the org '{org.slug}'.", field="org", code="not_found")
    if not has_permission(membership.role, "org.view"):
        raise ServiceError(f"Your role in '{org.slug}' ({membership.role}) has no web pages to open; choose an "
                           "org where you can see the org's pages.", field="org")
    current, _ = UserSettings.objects.select_for_update().get_or_create(user=user)
    previous = current.default_org
    if previous is not None and previous.pk == org.pk:
        return org
    current.default_org = org
    current.updated_at = timezone.now()
    current.save(update_fields=["default_org", "updated_at"])
    target = ("user", user.pk, _user_label(user))
    change = {"before": {"default_org": previous.slug if previous else None}, "after": {"default_org": org.slug}}
    record_event(ctx, org, AuditAction.USER_DEFAULT_ORG_CHANGED, target, **change)
    if previous is not None and Membership.objects.filter(org=previous, user=user).exists():
        record_event(ctx, previous, AuditAction.USER_DEFAULT_ORG_CHANGED, target, **change)
    return org


# --- service accounts and tokens ----------------------------------------------------------------------

@transaction.atomic(durable=True)
def update_service_account(ctx: AuditContext, account: ServiceAccount, *, description: str | None = None,
                           role: str | None = None) -> ServiceAccount:
    account = ServiceAccount.objects.select_for_update().get(pk=account.pk)
    if account.deactivated_at is not None:
        raise ServiceError("This service account is deactivated.", code="conflict")
    before, after = {}, {}
    if role is not None and role != account.role:
        if role not in Role.values:
            raise ServiceError(f"Unknown role '{role}'.", field="role")
        if role == Role.OWNER:
            raise ServiceError("A service account cannot be an owner.", field="role")
        before["role"], after["role"] = account.role, role
        account.role = role
    if description is not None and description != account.description:
        if len(description) > 500:
            raise ServiceError("Use at most 500 characters.", field="description")
        before["description"], after["description"] = account.description, description
        account.description = description
    if after:
        account.save(update_fields=list(after))
        record_event(ctx, account.org, AuditAction.SERVICE_ACCOUNT_UPDATED, account, before=before, after=after)
    return account


@transaction.atomic  # also called inside the admin's own transaction
def deactivate_service_account(ctx: AuditContext, account: ServiceAccount) -> ServiceAccount:
    """Deactivate a service account and revoke every token it has. Its history stays."""
    account = ServiceAccount.objects.select_for_update().get(pk=account.pk)
    if account.deactivated_at is not None:
        return account
    now = timezone.now()
    account.deactivated_at = now
    account.save(update_fields=["deactivated_at"])
    revoked = _revoke_tokens(ctx, ApiToken.objects.filter(service_account=account), "service account deactivated")
    record_event(ctx, account.org, AuditAction.SERVICE_ACCOUNT_DEACTIVATED, account,
                 before={"active": True}, after={"active": False, "tokens_revoked": revoked})
    return account


@transaction.atomic  # also called inside the admin's own transaction
def revoke_api_token(ctx: AuditContext, token: ApiToken) -> ApiToken:
    """Revoke a token now. Revoking a revoked token changes nothing."""
    token = ApiToken.objects.select_for_update(of=("self",)).select_related("service_account").get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    before = token_summary(token)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    record_event(ctx, token.org, AuditAction.TOKEN_REVOKED, token, before=before, after=token_summary(token))
    return token


# Grace periods offered when rotating: how long the old token keeps working.
ROTATION_GRACE_CHOICES = [
    (0, "no grace period"),
    (3600, "1 hour"),
    (86400, "24 hours"),
    (7 * 86400, "7 days"),
    (30 * 86400, "30 days"),
]
MAX_ROTATION_GRACE_SECONDS = 30 * 86400


_KEEP_LIFETIME = object()


@transaction.atomic(durable=True)
def rotate_api_token(ctx: AuditContext, token: ApiToken, grace_seconds: int,
                     created_by=None, expires_at=_KEEP_LIFETIME) -> tuple[ApiToken, str]:
    """Replace ``token`` with a new one; the old one keeps working for ``grace_seconds``.

    The new token keeps the old one's name, scope and lifetime (an expiring token gets the same length of
    validity from now), unless ``expires_at`` says when it ends (``None``: never; ``kosli rotate api-key
    --expires-at``). Returns (new row, plaintext)."""
    token = ApiToken.objects.select_for_update(of=("self",)).select_related("service_account").get(pk=token.pk)
    if not 0 <= grace_seconds <= MAX_ROTATION_GRACE_SECONDS:
        raise ServiceError(f"The grace period must be between 0 and {MAX_ROTATION_GRACE_SECONDS} seconds.",
                           field="grace_seconds")
    now = timezone.now()
    if not token.is_usable(now):
        raise ServiceError(f"This token is {token.status}; create a new one instead.", code="conflict")
    if token.rotated_to_id:
        raise ServiceError("This token was already rotated.", code="conflict")
    if expires_at is not _KEEP_LIFETIME:
        if expires_at is not None and expires_at <= now:
            raise ServiceError("The expiry must be in the future.", field="expires_at")
    elif token.expires_at is not None:
        expires_at = now + (token.expires_at - token.created_at)
    else:
        expires_at = None
    plaintext = generate_token()
    new = ApiToken.objects.create(
        org=token.org, service_account=token.service_account, user=token.user, name=token.name,
        prefix=display_prefix(plaintext), token_hash=hash_token(plaintext), expires_at=expires_at,
        created_by=created_by, created_at=now, **token_scope(token),
    )
    before = token_summary(token)
    old_end = now + timedelta(seconds=grace_seconds)
    if token.expires_at is None or token.expires_at > old_end:
        token.expires_at = old_end
    token.rotated_to = new
    token.save(update_fields=["expires_at", "rotated_to"])
    record_event(ctx, token.org, AuditAction.TOKEN_ROTATED, token, before=before,
                 after={**token_summary(token), "grace_seconds": grace_seconds, "new_token": new.prefix})
    record_event(ctx, token.org, AuditAction.TOKEN_CREATED, new,
                 after={**token_summary(new), "rotated_from": token.prefix})
    return new, plaintext


# --- erasure of a person (audit/erasure.py runs it) -----------------------------------------------------

def erase_memberships(ctx: AuditContext, users, email: str) -> dict[str, int]:
    """What an erased person leaves in orgs: each membership removed (audited as a removal, their tokens
    revoked first), the addresses their tokens were last used from forgotten, pending invitations of their
    email address deleted. Refused while the person is an org's last owner: that org needs a new owner first."""
    counts = {"memberships removed": 0, "tokens revoked": 0, "invitations deleted": 0}
    for membership in (Membership.objects.select_for_update().select_related("org", "user")
                       .filter(user__in=users).order_by("org__slug")):
        org = _lock_org(membership.org)
        if membership.role == Role.OWNER and _owner_count(org) <= 1:
            raise ServiceError(f"{membership.user.email or membership.user.get_username()} is the last owner of "
                               f"{org.slug}; make someone else an owner first.", field="email", code="conflict")
        counts["tokens revoked"] += _revoke_tokens(
            ctx, ApiToken.objects.filter(org=org, user_id=membership.user_id), "person erased")
        target = _member_target(membership)
        before = {"role": membership.role}
        membership.delete()
        record_event(ctx, org, AuditAction.MEMBER_REMOVED, target, before=before, after={"reason": "person erased"})
        counts["memberships removed"] += 1
    counts["tokens revoked"] += _revoke_tokens(ctx, ApiToken.objects.filter(user__in=users), "person erased")
    ApiToken.objects.filter(user__in=users).update(last_used_ip=None)
    counts["invitations deleted"] = Invitation.objects.filter(email__iexact=email).delete()[0]
    UserSettings.objects.filter(user__in=users).delete()
    return counts
