from django.db import models


class ReportKind(models.TextChoices):
    """What a report covers (see docs/reports.md)."""

    ENVIRONMENT = "environment", "Environment change report"
    ARTIFACT = "artifact", "Artifact report"
    ORG = "org", "Org compliance summary"
    AUDIT = "audit", "Audit-trail report"
    EXPOSURE = "exposure", "Vulnerability exposure report"


class ReportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
