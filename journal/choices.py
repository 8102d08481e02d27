from django.db import models


class LeafKind(models.TextChoices):
    """What a journal leaf records."""

    AUDIT_EVENT = "audit_event", "Audit event"
    SNAPSHOT = "snapshot", "Snapshot"
    ARTIFACT = "artifact", "Artifact"
    ATTESTATION = "attestation", "Attestation"
    EVIDENCE_FILE = "evidence_file", "Evidence file"
    REPORT = "report", "Audit report"
