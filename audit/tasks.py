"""Celery tasks of the audit trail."""

from celery import shared_task

from audit import services


@shared_task(name="audit.summarize_denied_access")
def summarize_denied_access_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE["audit-summarize-denied-access"]): one access.denied_repeated event
    per closed window of refused attempts (audit/services.py)."""
    return services.summarize_denied_access()
