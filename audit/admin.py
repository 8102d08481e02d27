"""Read-only admin for the audit trail (append-only: no add, change or delete)."""

from django.contrib import admin

from audit.models import AuditEvent
from csm.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "org", "seq", "action", "actor_label", "target_type", "target_label", "ip"]
    list_filter = ["org", "action", "actor_type"]
    search_fields = ["actor_label", "target_label", "target_id", "request_id"]
    date_hierarchy = "created_at"
