"""Celery tasks of the journal: publishing checkpoints. Tasks take ids and are idempotent."""

import logging

from celery import shared_task
from django.core.cache import cache
from django.db import DatabaseError

from journal.models import JournalHead, JournalTree
from journal.services import checkpoint_behind_orgs, publish_checkpoint, schedule_checkpoint

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


@shared_task(name="journal.publish_due_checkpoints")
def publish_due_checkpoints_task() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE["journal-checkpoints"]): a checkpoint for every org whose leaves a
    lost message left unpublished."""
    count = 0
    for org_id in list(checkpoint_behind_orgs()):
        publish_checkpoint(org_id)
        count += 1
    if count:
        log.info("published %s overdue checkpoint(s)", count)
    return count
