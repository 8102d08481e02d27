"""Celery tasks of the vulnerability app (in the embedded default they run in-process)."""

from celery import shared_task

from evidence.choices import AttestationType
from evidence.models import Attestation


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


@shared_task(acks_late=True)
def index_bound_vex(artifact_id: int) -> None:
    """Index the ``vex`` attestations a newly reported artifact was bound to (made before it existed)."""
    from .vex import index_bound_vex as index

    index(artifact_id)
