from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: who did what (events, request context) and the audit log pages."""

    name = "audit"

    def ready(self):
        from audit import erasure, verify
        from audit import hooks as audit_hooks
        from journal import hooks as journal_hooks
        from journal.choices import LeafKind
        from journal.personal import register_leaf_eraser
        from journal.verify import register_org_check, register_row_check

        register_row_check(LeafKind.AUDIT_EVENT, verify.check_audit_event)
        register_leaf_eraser(LeafKind.AUDIT_EVENT, erasure.erase_audit_rows)
        register_org_check(verify.check_audit_numbering)
        journal_hooks.cosignature_added(audit_hooks.record_cosignature)
