"""Admin for identity: read-only, because every change here is an audited write that goes through the
identity services (org settings pages, SCIM)."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from identity.models import (
    EnvironmentReporter,
    GroupRoleMapping,
    OrgIdentitySettings,
    ScimGroup,
    ScimGroupMember,
    ScimSettings,
    ScimToken,
    ScimUser,
    SsoDomain,
    SsoProvider,
    TokenNetwork,
    UserSession,
)


@admin.register(OrgIdentitySettings)
class OrgIdentitySettingsAdmin(ReadOnlyAdmin):
    list_display = ["org", "require_sso", "require_two_factor", "updated_at"]
    list_filter = ["org"]


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ReadOnlyAdmin):
    list_display = ["org", "group", "role", "created_at"]
    list_filter = ["org"]


@admin.register(ScimToken)
class ScimTokenAdmin(ReadOnlyAdmin):
    list_display = ["org", "prefix", "name", "created_at", "revoked_at", "last_used_at", "last_used_ip"]
    list_filter = ["org"]
    exclude = ["token_hash"]


@admin.register(ScimSettings)
class ScimSettingsAdmin(ReadOnlyAdmin):
    list_display = ["org", "default_role", "updated_at"]
    list_filter = ["org"]


@admin.register(ScimUser)
class ScimUserAdmin(ReadOnlyAdmin):
    list_display = ["org", "user_name", "email", "external_id", "active", "updated_at"]
    list_filter = ["org"]
    search_fields = ["user_name", "email", "external_id"]


@admin.register(ScimGroup)
class ScimGroupAdmin(ReadOnlyAdmin):
    list_display = ["org", "display_name", "external_id", "updated_at"]
    list_filter = ["org"]


@admin.register(ScimGroupMember)
class ScimGroupMemberAdmin(ReadOnlyAdmin):
    list_display = ["org", "group", "user"]
    list_filter = ["org"]


@admin.register(TokenNetwork)
class TokenNetworkAdmin(ReadOnlyAdmin):
    list_display = ["org", "token", "network", "first_seen", "last_seen"]
    list_filter = ["org"]


@admin.register(EnvironmentReporter)
class EnvironmentReporterAdmin(ReadOnlyAdmin):
    list_display = ["org", "environment_id", "reporter_label", "reporter_key", "first_seen"]
    list_filter = ["org"]


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    """A person's web sessions (not tenant-owned: one session spans all their orgs). Ended from
    /account/sessions/, the members page or a suspension, never here."""

    list_display = ["user", "device", "ip", "method", "created_at", "last_seen_at", "ended_at", "end_reason"]
    list_filter = ["method", "end_reason"]
    search_fields = ["user__email", "ip", "device"]
    exclude = ["key_hash"]


@admin.register(SsoProvider)
class SsoProviderAdmin(ReadOnlyAdmin):
    list_display = ["org", "issuer", "client_id", "enabled", "default_role", "updated_at"]
    list_filter = ["org"]
    exclude = ["client_secret_sealed"]


@admin.register(SsoDomain)
class SsoDomainAdmin(ReadOnlyAdmin):
    list_display = ["org", "domain", "verified_at", "verified_by"]
    list_filter = ["org"]
