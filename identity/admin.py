"""Admin for identity: read-only, because every change here is an audited write that goes through the
identity services (org settings pages, SCIM)."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from identity.models import GroupRoleMapping, OrgIdentitySettings, UserSession


@admin.register(OrgIdentitySettings)
class OrgIdentitySettingsAdmin(ReadOnlyAdmin):
    list_display = ["org", "require_sso", "require_two_factor", "updated_at"]
    list_filter = ["org"]


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ReadOnlyAdmin):
    list_display = ["org", "group", "role", "created_at"]
    list_filter = ["org"]


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    """A person's web sessions (not tenant-owned: one session spans all their orgs). Ended from
    /account/sessions/, the members page or a suspension, never here."""

    list_display = ["user", "device", "ip", "method", "created_at", "last_seen_at", "ended_at", "end_reason"]
    list_filter = ["method", "end_reason"]
    search_fields = ["user__email", "ip", "device"]
    exclude = ["key_hash"]
