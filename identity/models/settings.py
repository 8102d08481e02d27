from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from tenants.models import Org


class OrgIdentitySettings(models.Model):
    """An org's sign-in security switches. A missing row means every switch is off.

    ``require_sso``: the org's members sign in through its OpenID Connect provider; a password sign-in of a
    member fails (owners keep an audited recovery path). ``require_two_factor``: the org's pages stay closed
    to a member until they enrol a second factor (TOTP or a passkey)."""

    org = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="identity_settings")
    require_sso = models.BooleanField(default=False)
    require_two_factor = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        verbose_name_plural = "org identity settings"

    def __str__(self):
        return f"identity settings of {self.org}"

    @classmethod
    def of(cls, org) -> "OrgIdentitySettings":
        """The org's settings, or unsaved defaults (every switch off)."""
        return cls.objects.filter(org=org).first() or cls(org=org)
