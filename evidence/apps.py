import json

from django.apps import AppConfig


def _row_check(model):
    """A ``verify_audit`` check: the row a leaf committed to still has the data the leaf recorded."""

    def check(leaf):
        from journal.canonical import canonical_json

        row = model.objects.filter(leaf_id=leaf.pk).first()
        label = model._meta.verbose_name
        if row is None:
            return f"its {label} row is missing"
        if canonical_json(row.journal_data()) != canonical_json(json.loads(leaf.payload)["data"]):
            return f"{label} {row.pk} was altered after it was recorded"
        return None

    return check


class EvidenceConfig(AppConfig):
    """Evidence vault: flows, trails, artifacts, attestations and evidence files."""

    name = "evidence"
    label = "evidence"

    def ready(self):
        from evidence import selectors
        from evidence.models import Artifact, Attestation, EvidenceFile
        from journal.choices import LeafKind
        from journal.verify import register_row_check
        from snapshots import hooks

        register_row_check(LeafKind.ARTIFACT, _row_check(Artifact))
        register_row_check(LeafKind.ATTESTATION, _row_check(Attestation))
        register_row_check(LeafKind.EVIDENCE_FILE, _row_check(EvidenceFile))
        hooks.artifact_enricher(selectors.provenance_for)
        hooks.search_matcher(selectors.search_commits)
        hooks.search_matcher(selectors.search_fingerprints)
        hooks.name_search_matcher(selectors.search_names)
