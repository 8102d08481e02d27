"""Celery tasks of the evidence vault."""

from celery import shared_task

from evidence.retention import apply_all_retention


@shared_task(name="evidence.apply_retention")
def apply_retention_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE["retention"]): drop report bodies and evidence files past each org's
    retention (evidence/retention.py). Idempotent; safe beside another run."""
    return apply_all_retention()
