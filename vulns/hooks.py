"""How the vulnerability app plugs into the evidence vault, and its own extension point.

- ``on_attestation_saved``: post_save of ``evidence.Attestation``. An ``sbom`` attestation is indexed
  (``matching.index_sbom``) and matched, a ``vex`` attestation's statements are stored
  (``vex.index_vex``), both once the attestation's transaction has committed.
- ``on_artifact_saved``: post_save of ``evidence.Artifact``. Attestations made before their artifact
  (naming it by template name and commit) are bound when it is reported; its ``vex`` attestations are
  indexed then (``vex.index_bound_vex``).
- ``matches_added(fn)``: ``fn(org_id: int, match_ids: list[int], cause: str)`` runs after new
  ``VulnerabilityMatch`` rows have committed; ``cause`` is ``"sbom"`` (a new SBOM matched known
  advisories) or ``"advisory"`` (a new or changed advisory matched known components). The alerts app
  registers here (``ON_NEW_VULNERABILITY_AFFECTS_RUNNING``).
- ``advisories_changed(fn)``: ``fn(advisory_ids: list[int])`` runs after an import or sync has committed
  created, updated or withdrawn advisories (``osv.py`` calls ``run_advisories_changed``); matching
  registers here to re-match only the components those advisories name.
"""

import logging
from collections.abc import Callable

from django.db import transaction

from evidence.choices import AttestationType

log = logging.getLogger(__name__)

_matches_added: list[Callable[[int, list[int], str], None]] = []


_advisories_changed: list[Callable[[list[int]], None]] = []


def advisories_changed(fn):
    if fn not in _advisories_changed:
        _advisories_changed.append(fn)
    return fn


def run_advisories_changed(advisory_ids: list[int]) -> None:
    """Call every ``advisories_changed`` function (after the import's transaction has committed)."""
    if not advisory_ids:
        return
    for fn in list(_advisories_changed):
        fn(list(advisory_ids))


def matches_added(fn):
    if fn not in _matches_added:
        _matches_added.append(fn)
    return fn


def run_matches_added(org_id: int, match_ids: list[int], cause: str) -> None:
    """Call every ``matches_added`` function once the current transaction commits (at once outside one)."""
    if not match_ids:
        return

    def run():
        for fn in list(_matches_added):
            try:
                fn(org_id, list(match_ids), cause)
            except Exception:  # one listener failing must not stop the others, nor undo the matches
                log.exception("matches_added listener %s failed", getattr(fn, "__name__", fn))

    transaction.on_commit(run)


def on_attestation_saved(sender, instance, created, **kwargs):
    if not created or instance.type not in (AttestationType.SBOM, AttestationType.VEX):
        return
    from .tasks import index_attestation

    attestation_id = instance.pk
    transaction.on_commit(lambda: index_attestation.delay(attestation_id))


def on_artifact_saved(sender, instance, created, **kwargs):
    if not created:
        return
    from .tasks import index_bound_vex

    artifact_id = instance.pk
    transaction.on_commit(lambda: index_bound_vex.delay(artifact_id))
