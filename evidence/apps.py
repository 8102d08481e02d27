import json

from django.apps import AppConfig


def _row_check(model):
    """A ``verify_audit`` check: the row a leaf committed to still has the data the leaf recorded."""

    def check(leaf):
        from journal.canonical import canonical_json
        from journal.personal import committed

        row = model.objects.filter(leaf_id=leaf.pk).first()
        label = model._meta.verbose_name
        if row is None:
            return f"its {label} row is missing"
        data = json.loads(leaf.payload)["data"]
        if canonical_json(committed(row.journal_data(), row.personal, leaf_data=data)) != canonical_json(data):
            return f"{label} {row.pk} was altered after it was recorded"
        return None

    return check


def _leaf_eraser(model, column: str):
    """An erasure's rewrite of ``model`` rows whose ``column`` (committed as a keyed hash) is a person's."""

    def erase(leaf_ids, persons) -> int:
        from django.db.models import F

        from journal.personal import ERASED

        pointer = f"/{column}"
        ids = [pk for pk, personal in model.objects.filter(leaf_id__in=leaf_ids).exclude(personal=None)
               .values_list("pk", "personal") if personal.get(pointer) in persons]
        return model.objects.filter(pk__in=ids).exclude(**{column: ERASED}).update(
            **{column: ERASED, "erasures": F("erasures") + 1})

    return erase


class EvidenceConfig(AppConfig):
    """Evidence vault: flows, trails, artifacts, attestations and evidence files."""

    name = "evidence"
    label = "evidence"

    def ready(self):
        from evidence import selectors
        from evidence.models import (
            Artifact,
            Attestation,
            Control,
            CustomAttestationType,
            CustomAttestationTypeVersion,
            EvidenceFile,
            FlowName,
        )
        from journal.choices import LeafKind
        from journal.personal import register_label_column, register_leaf_eraser
        from journal.verify import register_row_check
        from snapshots import hooks

        register_row_check(LeafKind.ARTIFACT, _row_check(Artifact))
        register_row_check(LeafKind.ATTESTATION, _row_check(Attestation))
        register_row_check(LeafKind.EVIDENCE_FILE, _row_check(EvidenceFile))
        register_leaf_eraser(LeafKind.ARTIFACT, _leaf_eraser(Artifact, "reported_by"))
        register_leaf_eraser(LeafKind.ATTESTATION, _leaf_eraser(Attestation, "reported_by"))
        register_leaf_eraser(LeafKind.EVIDENCE_FILE, _leaf_eraser(EvidenceFile, "uploaded_by"))
        register_label_column(FlowName, "renamed_by", "erasures")
        register_label_column(CustomAttestationTypeVersion, "created_by", "erasures")
        register_label_column(CustomAttestationType, "created_by")
        register_label_column(Control, "created_by")
        hooks.artifact_enricher(selectors.provenance_for)
        hooks.search_matcher(selectors.search_commits)
        hooks.search_matcher(selectors.search_fingerprints)
        hooks.name_search_matcher(selectors.search_names)
