"""Django admin for staff: every tenant model, filterable by org.

Writes that matter (roles, tokens, service accounts) go through tenants/services.py so they are
audited: the admin shows these rows read-only and offers audited actions (revoke, deactivate)
instead of free editing. Org names are editable through the audited ``update_org``.
"""

from django.contrib import admin, messages

from audit.context import AuditContext
from csm.admin import ReadOnlyAdmin
from tenants import forms, services
from tenants.models import ApiToken, Invitation, Membership, Org, ServiceAccount, UserSettings

# /admin/login/ counts failed sign-ins with the same counters as /login/ (tenants.ratelimit); the 429
# status comes from tenants.views.admin_sign_in, routed in csm/urls.py.
admin.site.login_form = forms.AdminSignInForm


@admin.register(Org)
class OrgAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    readonly_fields = ["slug", "created_at"]
    fields = ["slug", "name", "created_at"]

    def has_add_permission(self, request):
        return False  # orgs are created with their first owner: the web app or `manage.py create_org`

    def has_delete_permission(self, request, obj=None):
        return False  # an org's audit trail and journal are kept

    def save_model(self, request, obj, form, change):
        current = Org.objects.get(pk=obj.pk)
        services.update_org(AuditContext.from_request(request), current, name=obj.name)


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "org", "role", "created_at"]
    list_filter = ["org", "role"]
    search_fields = ["user__email", "org__slug"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "org", "role", "status", "created_at", "expires_at"]
    list_filter = ["org", "role"]
    search_fields = ["email", "org__slug"]
    exclude = ["token_hash"]


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ReadOnlyAdmin):
    list_display = ["name", "org", "role", "created_at", "deactivated_at"]
    list_filter = ["org", "role"]
    search_fields = ["name", "org__slug"]
    actions = ["deactivate"]

    @admin.action(description="Deactivate the selected service accounts (revokes their tokens)")
    def deactivate(self, request, queryset):
        ctx = AuditContext.from_request(request)
        for account in queryset:
            services.deactivate_service_account(ctx, account)
        messages.success(request, f"Deactivated {queryset.count()} service account(s).")

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.is_staff  # lets actions run on the list; no edit form


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "name", "org", "kind", "status", "created_at", "expires_at", "last_used_at",
                    "last_used_ip", "scope"]
    list_filter = ["org", "read_only"]
    search_fields = ["prefix", "name", "org__slug", "service_account__name", "user__email"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    @admin.display(description="scope")
    def scope(self, token):
        return "; ".join(token.scope_summary) or "unlimited"

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        ctx = AuditContext.from_request(request)
        for token in queryset:
            services.revoke_api_token(ctx, token)
        messages.success(request, f"Revoked {queryset.count()} token(s).")

    def has_change_permission(self, request, obj=None):
        return obj is None and request.user.is_staff


@admin.register(UserSettings)
class UserSettingsAdmin(ReadOnlyAdmin):
    """A person's default org; they change it themselves (account page, ``kosli update default-org``)."""

    list_display = ["user", "default_org", "updated_at"]
    search_fields = ["user__email", "default_org__slug"]
