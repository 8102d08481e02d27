"""Admin for identity: read-only, because every change here is an audited write that goes through the
identity services (org settings pages, SCIM)."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from identity.models import EnvironmentReporter, GroupRoleMapping, OrgIdentitySettings, TokenNetwork


@admin.register(OrgIdentitySettings)
class OrgIdentitySettingsAdmin(ReadOnlyAdmin):
    list_display = ["org", "require_sso", "require_two_factor", "updated_at"]
    list_filter = ["org"]


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ReadOnlyAdmin):
    list_display = ["org", "group", "role", "created_at"]
    list_filter = ["org"]


@admin.register(TokenNetwork)
class TokenNetworkAdmin(ReadOnlyAdmin):
    list_display = ["org", "token", "network", "first_seen", "last_seen"]
    list_filter = ["org"]


@admin.register(EnvironmentReporter)
class EnvironmentReporterAdmin(ReadOnlyAdmin):
    list_display = ["org", "environment_id", "reporter_label", "reporter_key", "first_seen"]
    list_filter = ["org"]
