from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from tenants.choices import Role

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
)


class Org(models.Model):
    """A tenant. Everything csm stores belongs to exactly one org; its slug appears in URLs."""

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    # Sample data (``create_demo``): its pages carry a banner saying so, so nobody mistakes it for real
    # monitoring.
    is_demo = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # Retention (docs/operations.md, "Retention"): drop stored report bodies / evidence files after this many
    # days (None: keep forever). Hashes, sizes, snapshots, attestations and journal leaves are always kept.
    report_body_retention_days = models.PositiveIntegerField(null=True, blank=True)
    evidence_file_retention_days = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Membership(models.Model):
    """A user's role in an org. An org always keeps at least one owner (enforced in services)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    # A suspended member keeps their history and their place (SCIM ``active: false``, an IdP deprovisioning
    # them) but reaches nothing in the org: resolve_org (tenants/access.py) treats them as a stranger, so
    # their pages, sessions in this org and personal tokens stop at once. identity/membership.py writes it.
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.CharField(max_length=200, blank=True)
    # How the membership came to be: an invitation, org creation, SSO just-in-time, SCIM provisioning.
    source = models.CharField(max_length=20, blank=True, default="")

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="membership_unique_org_user")]
        ordering = ["org", "user__email"]

    def __str__(self):
        return f"{self.user} in {self.org} as {self.role}"


class Invitation(models.Model):
    """A single-use, expiring invitation to join an org with a role. Only a hash of its secret is kept."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"invitation of {self.email} to {self.org}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class ServiceAccount(models.Model):
    """A non-human identity of an org (an agent, a CI pipeline) with a role and its own tokens."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="service_accounts")
    name = models.CharField(max_length=100, validators=[slug_validator])
    description = models.CharField(max_length=500, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.SNAPSHOTTER)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deactivated_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        # The name is the account's handle in kosli's paths (/api/v2/service-accounts/{org}/{name}): unique
        # among the org's active accounts. A deactivated account keeps its history and frees its name, as
        # `kosli delete service-account` followed by `kosli create service-account` of the same name expects.
        constraints = [models.UniqueConstraint(fields=["org", "name"], condition=models.Q(deactivated_at__isnull=True),
                                               name="service_account_unique_active_org_name")]
        ordering = ["org", "name"]

    def __str__(self):
        return f"{self.org}/{self.name}"


class UserSettings(models.Model):
    """A person's own settings, across orgs: the org the web app opens after sign-in (``kosli get/update
    default-org``). Not tenant-owned: it belongs to the user; the org it names must be one of theirs."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="csm_settings")
    default_org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "user settings"

    def __str__(self):
        return f"settings of {self.user}"


class ApiToken(models.Model):
    """A bearer token of a service account or a person, valid in one org. Stored as a keyed hash.

    Rotation creates a new token and gives the old one an ``expires_at`` at the end of the grace period.
    """

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="api_tokens")
    service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise the token")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    # Scope (docs/identity.md): empty lists mean "not limited". Environment and flow names the token may
    # touch, read-only (safe methods only), and the client networks (CIDR) it may be used from. Enforced in
    # one place, tenants/access.py (check_token_scope), for every API view; a violation is a 403, audited.
    scope_environments = models.JSONField(default=list, blank=True)
    scope_flows = models.JSONField(default=list, blank=True)
    read_only = models.BooleanField(default=False)
    allowed_networks = models.JSONField(default=list, blank=True)
    rotated_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_from"
    )

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(service_account__isnull=False, user__isnull=True)
                | models.Q(service_account__isnull=True, user__isnull=False),
                name="api_token_one_owner",
            )
        ]

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @property
    def kind(self) -> str:
        return "service_account" if self.service_account_id else "personal"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        if self.expires_at is not None and self.expires_at <= now:
            return False
        if self.service_account_id and self.service_account.deactivated_at is not None:
            return False
        return True

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        if self.rotated_to_id:
            return "rotating"
        return "active"

    @property
    def scope_summary(self) -> list[str]:
        """The token's limits in words, one per limit (empty: unlimited), for the token tables."""
        parts = []
        if self.scope_environments:
            parts.append("environments " + ", ".join(self.scope_environments))
        if self.scope_flows:
            parts.append("flows " + ", ".join(self.scope_flows))
        if self.read_only:
            parts.append("read-only")
        if self.allowed_networks:
            parts.append("from " + ", ".join(self.allowed_networks))
        return parts

    def touch_due(self, now) -> bool:
        """``last_used_at`` is written at most once a minute, to keep token use off the write path."""
        return self.last_used_at is None or now - self.last_used_at > timedelta(minutes=1)
