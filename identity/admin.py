"""Admin for identity: read-only, because every change here is an audited write that goes through the
identity services (org settings pages, SCIM)."""

from django.contrib import admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from csm.admin import ReadOnlyAdmin
from identity.models import GroupRoleMapping, OrgIdentitySettings, RecoveryCode, WebAuthnCredential


@admin.register(OrgIdentitySettings)
class OrgIdentitySettingsAdmin(ReadOnlyAdmin):
    list_display = ["org", "require_sso", "require_two_factor", "updated_at"]
    list_filter = ["org"]


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(ReadOnlyAdmin):
    list_display = ["org", "group", "role", "created_at"]
    list_filter = ["org"]


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
