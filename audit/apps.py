from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The per-org journal, the audit trail and (later) the evidence vault and audit reports."""

    name = "audit"
