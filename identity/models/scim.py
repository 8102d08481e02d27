"""SCIM 2.0 provisioning (RFC 7643/7644, docs/identity.md "SCIM"): the org's bearer tokens, the users and groups
its identity provider provisioned, and the org's SCIM default role.

A ``ScimUser`` maps one SCIM User resource of the org to a csm person (a Django user) and, through the org's
membership of that person, to their place in the org. Its ``scim_id`` is the resource id the IdP sees: a random
UUID of this row, never the Django user's pk (one person can be provisioned by several orgs, each seeing only
its own id)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from csm.scoping import OrgScopedManager
from tenants.choices import Role
from tenants.models import Org


class ScimToken(models.Model):
    """A bearer token an identity provider uses at /scim/v2/. The org comes from the token alone. Stored as a
    keyed hash (tenants.tokens.hash_token); the plaintext is shown once, at creation."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="scim_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, help_text="First characters, to recognise the token")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at else "active"


class ScimSettings(models.Model):
    """The org's SCIM switches. ``default_role``: the role of a provisioned member none of whose SCIM groups
    maps to a role (identity.GroupRoleMapping). A missing row means the default, member."""

    org = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="scim_settings")
    default_role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        verbose_name_plural = "SCIM settings"

    def __str__(self):
        return f"SCIM settings of {self.org}"

    @classmethod
    def of(cls, org) -> "ScimSettings":
        return cls.objects.filter(org=org).first() or cls(org=org)


class ScimUser(models.Model):
    """A SCIM User resource of the org: the IdP's attributes (``resource``, as sent, without the password)
    and the columns csm filters and enforces uniqueness on. ``active`` mirrors the IdP's flag; the
    membership's suspension (identity.membership) is what takes effect."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="scim_users")
    scim_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scim_identities")
    user_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    email = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    resource = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["org", "created_at", "pk"]
        constraints = [
            # userName is caseExact false and unique per service provider (RFC 7643 §4.1.1): per org here.
            models.UniqueConstraint(Lower("user_name"), "org", name="scim_user_unique_org_user_name"),
            models.UniqueConstraint(fields=["org", "user"], name="scim_user_unique_org_user"),
        ]

    def __str__(self):
        return f"{self.user_name} in {self.org}"


class ScimGroup(models.Model):
    """A SCIM Group resource of the org. Its ``display_name`` is what identity.GroupRoleMapping maps to a
    role; unique per org (case-insensitive), as Entra ID requires for matching."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="scim_groups")
    scim_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["org", "created_at", "pk"]
        constraints = [
            models.UniqueConstraint(Lower("display_name"), "org", name="scim_group_unique_org_display_name"),
        ]

    def __str__(self):
        return f"{self.display_name} in {self.org}"


class ScimGroupMember(models.Model):
    """A provisioned user in a provisioned group (both of the same org)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(ScimGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(ScimUser, on_delete=models.CASCADE, related_name="group_memberships")

    objects = OrgScopedManager()

    class Meta:
        ordering = ["group", "pk"]
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="scim_group_member_unique")]

    def __str__(self):
        return f"{self.user.user_name} in {self.group.display_name}"
