"""Admin for identity: read-only, because every change here is an audited write that goes through the
identity services (org settings pages, SCIM)."""

from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from csm.admin import ReadOnlyAdmin
from identity.models import (
    EnvironmentReporter,
    GroupRoleMapping,
    OrgIdentitySettings,
    RecoveryCode,
    ScimGroup,
    ScimGroupMember,
    ScimSettings,
    ScimToken,
    ScimUser,
    SsoDomain,
    SsoIdentity,
    SsoProvider,
    TokenNetwork,
    UserSession,
    WebAuthnCredential,
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


@admin.register(SsoIdentity)
class SsoIdentityAdmin(ReadOnlyAdmin):
    list_display = ["org", "subject", "user", "email", "created_at", "last_used_at"]
    list_filter = ["org"]
    search_fields = ["subject", "email", "user__email"]


# --- two-factor: personal rows (no org). django-otp's own admin edits devices and shows their secrets;
# replaced by a read-only list (listed before identity in INSTALLED_APPS, so it is registered by now).
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at"]


@admin.register(WebAuthnCredential)
class WebAuthnCredentialAdmin(ReadOnlyAdmin):
    list_display = ["user", "name", "created_at", "last_used_at", "sign_count"]
    fields = ["user", "name", "transports", "sign_count", "created_at", "last_used_at"]


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(ReadOnlyAdmin):
    list_display = ["user", "created_at", "used_at"]
    fields = ["user", "created_at", "used_at"]
