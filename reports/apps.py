from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Audit reports: PDF and JSON reports generated from the journal."""

    name = "reports"
    label = "reports"

    def ready(self):
        # Registers verify_audit's check of report leaves against their stored outputs.
        from journal.personal import register_account_eraser, register_label_column
        from reports import services
        from reports.models import AuditReport

        register_account_eraser(services.withdraw_outputs_naming)
        register_label_column(AuditReport, "requested_by")
