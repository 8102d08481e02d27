"""Admin for identity: read-only, because every change here is an audited write that goes through the
identity services (org settings pages, SCIM)."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from identity.models import GroupRoleMapping, OrgIdentitySettings


@admin.register(OrgIdentitySettings)
class OrgIdentitySettingsAdmin(ReadOnlyAdmin):
    list_display = ["org", "require_sso", "require_two_factor", "updated_at"]
    list_filter = ["org"]


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ReadOnlyAdmin):
    list_display = ["org", "group", "role", "created_at"]
    list_filter = ["org"]
