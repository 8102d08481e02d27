from django.db import migrations

from csm.db import append_only


class Migration(migrations.Migration):
    """Artifacts, attestations, their evidence links, evidence files and SBOM components are append-only.
    The journal leaf is set once right after the row (the leaf commits to the row's id); an attestation's
    artifact is set once when a trail attestation is bound to the artifact that arrives later."""

    dependencies = [("evidence", "0001_initial")]

    operations = [
        append_only("evidence_artifact", settable_once=("leaf_id",)),
        append_only("evidence_attestation", settable_once=("leaf_id", "artifact_id")),
        append_only("evidence_attestationevidence"),
        append_only("evidence_evidencefile", settable_once=("leaf_id",)),
        append_only("evidence_sbomcomponent"),
    ]
