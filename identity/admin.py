"""Admin for identity: read-only, because every change here is an audited write that goes through the
identity services (org settings pages, SCIM)."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from identity.models import GroupRoleMapping, OrgIdentitySettings, SsoDomain, SsoProvider


@admin.register(OrgIdentitySettings)
class OrgIdentitySettingsAdmin(ReadOnlyAdmin):
    list_display = ["org", "require_sso", "require_two_factor", "updated_at"]
    list_filter = ["org"]


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ReadOnlyAdmin):
    list_display = ["org", "group", "role", "created_at"]
    list_filter = ["org"]


@admin.register(SsoProvider)
class SsoProviderAdmin(ReadOnlyAdmin):
    list_display = ["org", "issuer", "client_id", "enabled", "default_role", "updated_at"]
    list_filter = ["org"]
    exclude = ["client_secret_sealed"]


@admin.register(SsoDomain)
class SsoDomainAdmin(ReadOnlyAdmin):
    list_display = ["org", "domain", "verified_at", "verified_by"]
    list_filter = ["org"]
