"""Celery tasks of the journal: publishing checkpoints and timestamping them. Tasks take ids and are
idempotent."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError

from journal.models import JournalHead, JournalTree
from journal.services import checkpoint_behind_orgs, publish_checkpoint, schedule_checkpoint
from journal.timestamps import TimestampError, timestamp_checkpoint, untimestamped_latest

log = logging.getLogger(__name__)


@shared_task(name="journal.checkpoint", autoretry_for=(DatabaseError,), retry_backoff=1, max_retries=5)
def checkpoint_task(org_id: int) -> int:
    """Integrate the org's new leaves and sign a checkpoint; returns its size. When leaves committed
    while it ran, it asks for the next one (the batch window stays one per org)."""
    checkpoint = publish_checkpoint(org_id)
    cache.delete(f"csm:journal:checkpoint-due:{org_id}")
    head = JournalHead.objects.filter(org_id=org_id).values_list("last_index", flat=True).first() or 0
    tree = JournalTree.objects.filter(org_id=org_id).values_list("size", flat=True).first() or 0
    if head > tree:
        schedule_checkpoint(org_id)
    return checkpoint.size if checkpoint else 0


@shared_task(name="journal.timestamp", autoretry_for=(TimestampError, DatabaseError), retry_backoff=2,
             retry_backoff_max=300, retry_jitter=True, max_retries=6)
def timestamp_task(checkpoint_id: int) -> bool:
    """An RFC 3161 token for a new checkpoint from CSM_JOURNAL_TSA_URL (journal/timestamps.py); a TSA
    that is down is asked again with backoff, then by the periodic task."""
    return timestamp_checkpoint(checkpoint_id)


@shared_task(name="journal.publish_due_checkpoints")
def publish_due_checkpoints_task(timestamp_min_age_seconds: int = 60) -> int:
    """Periodic (CELERY_BEAT_SCHEDULE["journal-checkpoints"]): a checkpoint for every org whose leaves a
    lost message left unpublished, and a timestamp for every org's latest checkpoint still without one
    ``timestamp_min_age_seconds`` after it was made (younger ones are left to their own task)."""
    count = 0
    for org_id in list(checkpoint_behind_orgs()):
        publish_checkpoint(org_id)
        count += 1
    if count:
        log.info("published %s overdue checkpoint(s)", count)
    if settings.CSM_JOURNAL_TSA_URL:
        for checkpoint_id in untimestamped_latest(timestamp_min_age_seconds):
            try:
                timestamp_checkpoint(checkpoint_id)
            except TimestampError as exc:
                log.warning("timestamping checkpoint %s failed: %s", checkpoint_id, exc)
    return count
