"""Retention (docs/operations.md, "Retention"): per org, drop stored report bodies (snapshots/retention.py)
and evidence files older than the org's settings, then record one ``retention.applied`` audit event per
org and run summarizing what went. The periodic task (evidence/tasks.py) runs ``apply_all_retention``.

An evidence file is stored once per org and may be attached to many attestations: its bytes are deleted
only when every attestation using it is older than the cutoff. Its row stays (SHA-256, size, name,
``dropped_at`` set once), so every attestation and journal leaf that commits to its SHA-256 still verifies;
downloads answer 410 Gone saying when retention removed it. Bytes attached again after that are not stored
again (the row says they are gone, and rows are append-only); the new attestation still commits to the
SHA-256 of what it received.

This module stands on the evidence floor because it reaches both report bodies (snapshots, below) and
evidence files."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from evidence import storage
from evidence.models import AttestationEvidence, EvidenceFile
from snapshots.retention import drop_report_bodies
from tenants.models import Org

log = logging.getLogger(__name__)


def retention_message(evidence) -> str:
    """What a download of a dropped evidence file answers (API 410 body, web page)."""
    return (f"Evidence file {evidence.original_name or evidence.sha256} was removed by the org's retention policy on "
            f"{evidence.dropped_at:%Y-%m-%d}; its SHA-256 {evidence.sha256} and size ({evidence.size} bytes) are kept, "
            "and the attestations and journal leaves committing to it still verify.")


def drop_evidence_files(org, days: int, now: datetime) -> dict:
    """Delete the stored bytes of ``org``'s evidence files whose every attestation is older than
    ``now - days``, ``CSM_RETENTION_BATCH_SIZE`` rows per transaction. The rows are locked FOR UPDATE SKIP
    LOCKED: a concurrent run skips them, and so does a file an attestation is being attached to right now
    (inserting the link holds a key-share lock on the file's row). The bytes are deleted before the
    transaction commits: should the commit fail, the next run finds the row still undropped and finishes
    (deleting a missing file is a no-op), so a row never claims bytes are gone that are kept.
    Returns ``{"files": n, "bytes": freed, "cutoff": cutoff}``."""
    cutoff = now - timedelta(days=days)
    dropped = {"files": 0, "bytes": 0, "cutoff": cutoff}
    newer = AttestationEvidence.objects.filter(evidence_file=OuterRef("pk"), attestation__created_at__gte=cutoff)
    store = storage.evidence_storage()
    while True:
        with transaction.atomic(durable=True):
            rows = list(EvidenceFile.objects.filter(org=org, dropped_at__isnull=True, created_at__lt=cutoff)
                        .exclude(Exists(newer)).select_for_update(skip_locked=True, of=("self",)).order_by("pk")
                        .values_list("pk", "storage_name", "size")[:settings.CSM_RETENTION_BATCH_SIZE])
            if not rows:
                return dropped
            EvidenceFile.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(dropped_at=now)
            for _, name, _ in rows:
                store.delete(name)
        dropped["files"] += len(rows)
        dropped["bytes"] += sum(size for _, _, size in rows)


def apply_retention(org_id: int, now: datetime | None = None) -> dict | None:
    """Apply ``org_id``'s retention settings; record one audit event when anything was dropped. Idempotent:
    a second run drops nothing more and records nothing. Returns the summary, or None if the org is gone."""
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        return None
    now = now or timezone.now()
    summary = {}
    if org.report_body_retention_days:
        reports = drop_report_bodies(org, org.report_body_retention_days, now)
        summary["report_bodies"] = {"days": org.report_body_retention_days, "cutoff": reports["cutoff"],
                                    "dropped": reports["reports"], "bytes_freed": reports["bytes"]}
    if org.evidence_file_retention_days:
        files = drop_evidence_files(org, org.evidence_file_retention_days, now)
        summary["evidence_files"] = {"days": org.evidence_file_retention_days, "cutoff": files["cutoff"],
                                     "dropped": files["files"], "bytes_freed": files["bytes"]}
    if any(part["dropped"] for part in summary.values()):
        with transaction.atomic(durable=True):
            record_event(AuditContext.system("retention"), org, AuditAction.RETENTION_APPLIED,
                         ("org", org.pk, org.slug), after=summary)
        log.info("retention of org %s: %s", org.slug, summary)
    return summary


def apply_all_retention(now: datetime | None = None) -> int:
    """Apply the retention of every org that has one; returns how many orgs were visited."""
    org_ids = list(Org.objects.filter(Q(report_body_retention_days__isnull=False)
                                      | Q(evidence_file_retention_days__isnull=False)).values_list("pk", flat=True))
    for org_id in org_ids:
        apply_retention(org_id, now)
    return len(org_ids)
