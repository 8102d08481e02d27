from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from reports.models import AuditReport, ReportOutput


@admin.register(AuditReport)
class AuditReportAdmin(ReadOnlyAdmin):
    """Read-only view of requested reports; the generated outputs are append-only and not shown here."""

    list_display = ["title", "org", "kind", "status", "progress", "requested_by", "created_at"]
    list_filter = ["org", "kind", "status"]
    search_fields = ["title", "requested_by", "org__slug"]


@admin.register(ReportOutput)
class ReportOutputAdmin(ReadOnlyAdmin):
    list_display = ["report", "org", "pdf_sha256", "created_at"]
    list_filter = ["org"]
    exclude = ["pdf", "data_json"]
