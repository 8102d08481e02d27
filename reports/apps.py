from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Audit reports: PDF and JSON reports generated from the journal."""

    name = "reports"
    label = "reports"

    def ready(self):
        # Registers verify_audit's check of report leaves against their stored outputs.
        from reports import services  # noqa: F401
