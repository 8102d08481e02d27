"""How policies plug into the snapshot journal (registered in ``PoliciesConfig.ready``) and the
function the evidence vault calls when an attestation may change artifacts' standing."""

from audit.context import AuditContext


def evaluate_new_snapshot(snapshot_id: int, ctx_dict: dict) -> None:
    """after_snapshot hook: evaluate the snapshot right after it committed, in the ingest worker."""
    from .services import evaluate_snapshot

    evaluate_snapshot(snapshot_id)


def snapshot_compliance_fields(snapshot) -> dict:
    """snapshot_enricher: top-level ``compliant`` / ``applied_policies`` and, under ``artifacts``, per
    fingerprint ``compliant``, ``policy_decisions`` and ``reasons_for_incompliance``. A snapshot read
    before its evaluation was stored gets the evaluation it would have now, not stored (reads never
    write)."""
    from .models import SnapshotCompliance
    from .services import preview_snapshot, snapshot_artifact_keys, unpoliced_decision

    stored = SnapshotCompliance.objects.filter(snapshot_id=snapshot.pk).first()
    if stored is None:
        compliance = preview_snapshot(snapshot)
    else:
        artifacts = stored.artifacts
        if not artifacts and not stored.applied_policies:  # stored compactly: no policy, all compliant
            artifacts = [unpoliced_decision(artifact, {}) for artifact in snapshot_artifact_keys(snapshot)]
        compliance = {"compliant": stored.compliant, "applied_policies": stored.applied_policies,
                      "artifacts": artifacts}
    return {
        "compliant": compliance["compliant"],
        "applied_policies": compliance["applied_policies"],
        "artifacts": {
            item["fingerprint"]: {
                "compliant": item["compliant"],
                "compliance_status": item["status"],
                "policy_decisions": item["policy_decisions"],
                "reasons_for_incompliance": item["reasons_for_incompliance"],
                "allowlisted": item["allowlisted"],
            }
            for item in compliance["artifacts"] if item.get("fingerprint")
        },
    }


def artifacts_changed_standing(org, fingerprints, reason: str = "attestation", ctx: AuditContext | None = None) -> int:
    """For the evidence vault: attestations about ``fingerprints`` changed (call inside the writing
    transaction; work starts after commit). Every environment currently running one of them is
    re-evaluated; a new snapshot is appended only where a decision actually changes. Returns how many
    environments were asked."""
    from snapshots.models import SnapshotEntry

    from .models import PolicyAttachment
    from .services import request_reevaluation

    wanted = {fp for fp in fingerprints if fp}
    if not wanted:
        return 0
    with_policies = PolicyAttachment.objects.filter(org=org).values_list("environment_id", flat=True)
    environment_ids = set(
        SnapshotEntry.objects.filter(org=org, fingerprint__in=wanted, to_index=None, environment_id__in=with_policies)
        .values_list("environment_id", flat=True).distinct()
    )
    for environment_id in sorted(environment_ids):
        request_reevaluation(ctx or AuditContext.system(reason), environment_id, reason)
    return len(environment_ids)


def on_evidence_saved(sender, instance, **kwargs) -> None:
    """post_save of the evidence vault's Artifact and Attestation rows: a new report (provenance) or
    attestation can change the standing of the artifacts it is about, so their environments are
    re-evaluated after the vault's transaction commits."""
    from audit.evidence.models import Artifact

    if isinstance(instance, Artifact):
        fingerprints = {instance.fingerprint}
    elif instance.artifact_id or instance.artifact_fingerprint:
        fingerprints = {instance.artifact.fingerprint if instance.artifact_id else instance.artifact_fingerprint}
    else:  # a trail-level attestation speaks for every artifact of its trail
        fingerprints = set(Artifact.objects.filter(trail_id=instance.trail_id).values_list("fingerprint", flat=True))
    artifacts_changed_standing(instance.org, fingerprints, reason=f"evidence: {type(instance).__name__.lower()}")
