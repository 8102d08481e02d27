"""Retention of report bodies (docs/operations.md, "Retention"): the stored body of an ingested report older
than the org's ``report_body_retention_days`` is emptied, its ``payload_dropped_at`` set. Nothing else of
the report changes (the database trigger allows exactly this update, csm/db.py), so its SHA-256, size,
entry count and outcome stay, and so do the snapshots, entries and journal leaves made from it: no leaf
commits to a body, only to the snapshot it produced. A report without an outcome (pending, or failing and
retried by the sweeper) keeps its body: a worker still needs it.

Called per org by evidence/retention.py (the floor that may see both report bodies and evidence files)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from snapshots.models import Report


def drop_report_bodies(org, days: int, now: datetime) -> dict:
    """Empty the bodies of ``org``'s ingested reports received before ``now - days``, in transactions of at
    most ``CSM_RETENTION_BATCH_SIZE`` rows and (past the first row) ``CSM_RETENTION_BATCH_BYTES`` bytes, so
    memory and lock time stay bounded. Rows another run has locked are skipped (it drops them), so two runs
    at once drop each body once. Returns ``{"reports": n, "bytes": freed, "cutoff": cutoff}``."""
    cutoff = now - timedelta(days=days)
    dropped = {"reports": 0, "bytes": 0, "cutoff": cutoff}
    while True:
        with transaction.atomic(durable=True):
            rows = (Report.objects.filter(org=org, received_at__lt=cutoff, payload_dropped_at__isnull=True,
                                          outcome__isnull=False)
                    .select_for_update(skip_locked=True, of=("self",)).order_by("received_at", "id")
                    .values_list("pk", "payload_bytes")[:settings.CSM_RETENTION_BATCH_SIZE])
            ids, size = [], 0
            for pk, payload_bytes in rows:
                if ids and size + payload_bytes > settings.CSM_RETENTION_BATCH_BYTES:
                    break
                ids.append(pk)
                size += payload_bytes
            if not ids:
                return dropped
            Report.objects.filter(pk__in=ids, payload_dropped_at__isnull=True).update(payload=b"",
                                                                                     payload_dropped_at=now)
        dropped["reports"] += len(ids)
        dropped["bytes"] += size
