from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from tenants.choices import Role
from tenants.models import Org
from tenants.permissions import ROLE_ORDER


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


class GroupRoleMapping(models.Model):
    """An IdP group (an SSO groups-claim value, a SCIM group's displayName) and the role its members get in
    the org. One table for both SSO and SCIM, so a group means the same role however a person arrives."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="group_role_mappings")
    group = models.CharField(max_length=200)
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "group"], name="group_role_mapping_unique")]
        ordering = ["org", "group"]

    def __str__(self):
        return f"{self.group} → {self.role} in {self.org}"


def role_for_groups(org, groups, default: str | None) -> str | None:
    """The most privileged role any of ``groups`` maps to in ``org`` (owner > admin > member > snapshotter >
    reader), else ``default``. Group names compare exactly, as IdPs send them."""
    mapped = set(GroupRoleMapping.objects.filter(org=org, group__in=list(groups or [])).values_list("role", flat=True))
    for role in ROLE_ORDER:
        if role in mapped:
            return role
    return default
