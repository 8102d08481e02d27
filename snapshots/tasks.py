"""Celery tasks of the snapshot journal. Tasks take ids, re-read rows and are idempotent."""

import logging

from celery import shared_task
from django.db import DatabaseError

from csm.logs import log_context
from csm.metrics import REPORTS_FAILED
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import sweep_pending_reports

log = logging.getLogger(__name__)


@shared_task(
    name="snapshots.ingest_report",
    bind=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def ingest_report_task(self, report_id: int) -> str:
    """Ingest report ``report_id`` after every earlier pending report of its environment, in acceptance
    order (see ingest_report). A report that no longer exists is a clean no-op; a report that
    exhausts its retries stays pending and the sweeper enqueues it again later."""
    with log_context(report_id=report_id):
        try:
            outcome = ingest_report(report_id)
        except Exception as error:
            REPORTS_FAILED.labels(type(error).__name__).inc()
            raise
    if outcome is None:
        log.info("report %s is gone; nothing to ingest", report_id)
        return "gone"
    return outcome.status


@shared_task(name="snapshots.sweep_pending_reports")
def sweep_pending_reports_task(min_age_seconds: int | None = None) -> int:
    """Periodic (CELERY_BEAT_SCHEDULE["sweep-pending-reports"]): re-enqueue reports pending for longer than
    ``min_age_seconds`` (default CSM_SWEEP_GRACE_SECONDS)."""
    count = sweep_pending_reports(min_age_seconds)
    if count:
        log.info("re-enqueued %s pending report(s)", count)
    return count
