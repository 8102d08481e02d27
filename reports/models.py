"""Audit reports: a mutable status row per requested report and an append-only stored output.

``AuditReport`` is what the API and the Reports page poll (status, progress). ``ReportOutput`` is the
generated PDF and its JSON data, written once, with their SHA-256 and the journal leaf that commits to
them; database triggers reject UPDATE and DELETE on it (migration 0002), but for the erasure of a person it
printed, which deletes both and keeps the hashes (``withdrawn_at``).
"""

import uuid

from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from reports.choices import ReportKind, ReportStatus


class AuditReport(models.Model):
    """A requested report: kind, parameters, who asked, and the progress of its generation.

    The only mutable report table: status moves pending → running → done | failed and ``progress``
    (0–100) grows while the worker builds it. The result lives in ``ReportOutput``.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("tenants.Org", on_delete=models.CASCADE, related_name="audit_reports")
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    params = models.JSONField(default=dict)
    # Which parts the report contains and which were omitted for the requester's role (see access.py):
    # {"role", "included": [part ids], "omitted": [{"id", "title", "requires"}]}. Empty on rows older
    # than this field, which contain every part of their kind.
    sections = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_note = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=255)
    requested_by_user_id = models.BigIntegerField(null=True, blank=True)
    requested_by_token_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "-created_at"]), models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"{self.title} ({self.status})"

    @property
    def output_or_none(self):
        try:
            return self.output
        except ReportOutput.DoesNotExist:
            return None


class ReportOutput(models.Model):
    """The generated PDF and JSON data of a report. Append-only: written once, never changed.

    ``data_sha256`` is the SHA-256 of ``data_json`` (the canonical JSON of exactly what the PDF shows,
    printed inside the PDF); ``pdf_sha256`` is the SHA-256 of the PDF bytes. ``journal_index`` /
    ``journal_hash`` are the org's journal position the report covers; ``leaf`` is the journal leaf
    (kind ``report``) committing to both hashes.
    """

    org = models.ForeignKey("tenants.Org", on_delete=models.PROTECT, related_name="report_outputs")
    report = models.OneToOneField(AuditReport, on_delete=models.PROTECT, related_name="output")
    pdf = models.BinaryField()
    pdf_sha256 = models.CharField(max_length=64)
    pdf_size = models.BigIntegerField()
    page_count = models.PositiveIntegerField()
    data_json = models.BinaryField()
    data_sha256 = models.CharField(max_length=64)
    data_size = models.BigIntegerField()
    journal_index = models.BigIntegerField()
    journal_hash = models.CharField(max_length=64)
    leaf = models.OneToOneField("journal.JournalLeaf", on_delete=models.PROTECT, related_name="report_output")
    created_at = models.DateTimeField(default=timezone.now)
    # Set once when the erasure of a person it printed deleted ``pdf`` and ``data_json`` (the trigger allows
    # exactly that); the hashes, sizes and the leaf stay, downloads answer 410 (docs/operations.md).
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"output of {self.report_id} ({self.pdf_sha256[:12]})"

    def leaf_data(self) -> dict:
        """What the journal leaf commits to (checked by verify_audit)."""
        return {
            "report_id": str(self.report_id),
            "kind": self.report.kind,
            "pdf_sha256": self.pdf_sha256,
            "pdf_size": self.pdf_size,
            "data_sha256": self.data_sha256,
            "journal_index": self.journal_index,
            "journal_hash": self.journal_hash,
        }
