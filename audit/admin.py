"""Read-only admin for the audit trail and the journal (append-only: no add, change or delete)."""

from django.contrib import admin

from audit.models import AuditEvent, JournalHead, JournalLeaf
from csm.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "org", "seq", "action", "actor_label", "target_type", "target_label", "ip"]
    list_filter = ["org", "action", "actor_type"]
    search_fields = ["actor_label", "target_label", "target_id", "request_id"]
    date_hierarchy = "created_at"


@admin.register(JournalLeaf)
class JournalLeafAdmin(ReadOnlyAdmin):
    list_display = ["org", "index", "kind", "object_id", "leaf_hash", "created_at"]
    list_filter = ["org", "kind"]
    search_fields = ["leaf_hash", "object_id"]


@admin.register(JournalHead)
class JournalHeadAdmin(ReadOnlyAdmin):
    list_display = ["org", "last_index", "last_audit_seq", "last_hash"]
    list_filter = ["org"]
