"""Celery tasks of the vulnerability app (in the embedded default they run in-process)."""

import logging

from celery import shared_task
from django.conf import settings

from evidence.choices import AttestationType
from evidence.models import Attestation

from . import osv

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def index_attestation(attestation_id: int) -> None:
    """Index a newly committed ``sbom`` (components → packages → matches) or ``vex`` attestation."""
    attestation = Attestation.objects.filter(pk=attestation_id).only("type").first()
    if attestation is None:
        return
    if attestation.type == AttestationType.SBOM:
        from .matching import index_sbom

        index_sbom(attestation_id)
    elif attestation.type == AttestationType.VEX:
        from .vex import index_vex

        index_vex(attestation_id)


@shared_task(name="vulns.sync_vuln_sources")
def sync_vuln_sources() -> dict | None:
    """Periodic (CELERY_BEAT_SCHEDULE["vulns-sync-sources"]): import every source of ``CSM_VULN_SOURCES``
    (nothing when empty). One sync at a time: a run that finds the lock held (a long import still going)
    leaves it to that one. Not retried: the next period tries again, and an unchanged URL costs one request."""
    sources = settings.CSM_VULN_SOURCES
    if not sources:
        return None
    try:
        result = osv.import_sources(list(sources))
    except osv.SyncBusy:
        log.info("vulnerability sync skipped: another import is running", extra={"event": "vulns.sync.busy"})
        return None
    for location, reason in result.failed:
        log.warning("vulnerability source %s failed: %s", location, reason,
                    extra={"event": "vulns.sync.failed", "source": location, "error": reason})
    return {**result.counts(), "failed": len(result.failed), "not_modified": len(result.not_modified)}
