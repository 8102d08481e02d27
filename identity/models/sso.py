"""OpenID Connect SSO of an org: its provider (IdP) configuration and the email domains it signs in."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from csm.lib import secretbox
from csm.scoping import OrgScopedManager
from tenants.choices import Role
from tenants.models import Org


class SsoProvider(models.Model):
    """The org's OpenID Connect provider. ``client_secret_sealed`` is the client secret encrypted with
    csm.lib.secretbox (CSM_SECRET_ENCRYPTION_KEY); it is never shown back. Sign-in through it happens only
    while ``enabled``, and only for addresses in the org's verified domains (SsoDomain)."""

    org = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="sso_provider")
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret_sealed = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=False)
    default_role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    groups_claim = models.CharField(max_length=100, default="groups")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    def __str__(self):
        return f"SSO of {self.org} via {self.issuer}"

    @property
    def has_secret(self) -> bool:
        return bool(self.client_secret_sealed)

    def client_secret(self) -> str:
        """The decrypted client secret (raises secretbox.SecretUnreadable after a key change)."""
        return secretbox.unseal(self.client_secret_sealed, settings.CSM_SECRET_ENCRYPTION_KEY)

    def set_client_secret(self, value: str) -> None:
        self.client_secret_sealed = secretbox.seal(value, settings.CSM_SECRET_ENCRYPTION_KEY)


class SsoDomain(models.Model):
    """An email domain an org signs in through its IdP. Listed by an admin, *verified* once an admin completed
    a test sign-in at the IdP with an address of the domain and ``email_verified: true``. Only verified
    domains route sign-in and create members. A domain is verified by one org at most (partial unique index)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="sso_domains")
    domain = models.CharField(max_length=253)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "domain"], name="sso_domain_unique_in_org"),
            models.UniqueConstraint(fields=["domain"], condition=Q(verified_at__isnull=False),
                                    name="sso_domain_verified_once"),
        ]
        ordering = ["org", "domain"]

    def __str__(self):
        return f"{self.domain} ({'verified' if self.verified_at else 'unverified'}) of {self.org}"

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


class SsoIdentity(models.Model):
    """The link between a person at the org's IdP (the ID token's ``sub``, stable at that IdP) and a csm
    account. A returning person is found by it, never by email: an IdP may assert any address, so an address
    alone never opens an existing account (identity/sso.py, "how accounts are matched"). ``email`` is the
    address the IdP sent when the link was made. An org's links are removed when its issuer changes (another
    IdP's subjects mean other people)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="sso_identities")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    subject = models.CharField(max_length=255)
    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "subject"], name="sso_identity_subject_once_in_org"),
            models.UniqueConstraint(fields=["org", "user"], name="sso_identity_user_once_in_org"),
        ]
        ordering = ["org", "email"]
        verbose_name_plural = "SSO identities"

    def __str__(self):
        return f"{self.subject} at {self.org}'s IdP → {self.email}"
