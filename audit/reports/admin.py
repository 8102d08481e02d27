from django.contrib import admin

from audit.reports.models import AuditReport


@admin.register(AuditReport)
class AuditReportAdmin(admin.ModelAdmin):
    """Read-only view of requested reports; the generated outputs are append-only and not shown here."""

    list_display = ["title", "org", "kind", "status", "progress", "requested_by", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["title", "requested_by", "org__slug"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
