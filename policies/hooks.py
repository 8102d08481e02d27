"""How policies plug into the snapshot journal (registered in ``PoliciesConfig.ready``) and the
function the evidence vault calls when an attestation may change artifacts' standing."""

from collections import defaultdict

from django.db import transaction

from audit.context import AuditContext
from evidence.choices import AttestationType
from evidence.models import Artifact, Attestation, Flow, Trail
from snapshots.models import Environment, SnapshotEntry
from tenants.models import Org
from vulns.models import AffectedPackage, ComponentPackage, VulnerabilityMatch
from vulns.vex import index_vex

from .standing import authorization_for, compliance_state, environment_standings

# Up to this many artifacts, the snapshot enricher reads the decisions of those artifacts alone.
PAGE_DECISIONS_UP_TO = 1000


def evaluate_new_snapshot(snapshot_id: int, ctx_dict: dict) -> None:
    """after_snapshot hook: evaluate the snapshot right after it committed, in the ingest worker."""
    from .services import evaluate_snapshot

    evaluate_snapshot(snapshot_id)


def _artifact_fields(item: dict) -> dict:
    return {"compliant": item["compliant"], "compliance_status": compliance_state(item["compliant"], item["status"]),
            "policy_decisions": item["policy_decisions"],
            "reasons_for_incompliance": item["reasons_for_incompliance"], "allowlisted": item["allowlisted"]}


def _unpoliced_fields() -> dict:
    """Every artifact of an unpoliced environment with nothing allowlisted: compliance unknown."""
    from .services import unpoliced_decision

    return _artifact_fields(unpoliced_decision({"name": "", "fingerprint": ""}, {}))


def _with_authorization(snapshot, answer: dict, artifacts: list[dict] | None) -> dict:
    """Add ``authorized`` / ``authorization`` per running artifact (read now: provenance in the org,
    the allowlist, the environment's ``require_authorization``; two queries) and the top-level
    ``compliance_status``."""
    from .services import snapshot_artifact_keys

    if artifacts is None:
        keys = snapshot_artifact_keys(snapshot)
    else:
        keys = [{"name": a["name"], "fingerprint": a.get("fingerprint") or ""} for a in artifacts]
    found = authorization_for(snapshot.org, snapshot.environment, {k["fingerprint"] for k in keys})
    per_artifact = answer.setdefault("artifacts", {})
    for fingerprint, fields in found.items():
        if fingerprint:
            per_artifact[fingerprint] = {**per_artifact.get(fingerprint, {}), **fields}
    defaults = answer.get("artifact_defaults")
    answer["artifact_defaults"] = {**(defaults or {}), **found[""]}
    answer["compliance_status"] = compliance_state(answer["compliant"])
    return answer


def snapshot_compliance_fields(snapshot, artifacts: list[dict] | None = None) -> dict:
    """snapshot_enricher: top-level ``compliant`` (True / False, None when no policy applies),
    ``compliance_status`` and ``applied_policies`` and, under ``artifacts``, per fingerprint
    ``compliant``, ``compliance_status``, ``policy_decisions``, ``reasons_for_incompliance``,
    ``allowlisted``, ``authorized`` and ``authorization``.

    A stored evaluation is used as stored: its per-artifact decisions, or — stored compactly for an
    environment without policies or allowlist entries — one ``artifact_defaults`` for every artifact
    (compliance unknown); the snapshot's artifacts are not read again. A snapshot read before its
    evaluation was stored gets the evaluation it would have now, not stored (reads never write): a
    constant when the environment is unpoliced, else an evaluation of ``artifacts`` (the list the
    caller already read). Authorization is read now, for every running artifact, in two queries."""
    from .models import PolicyAttachment, SnapshotCompliance, decisions_at, decisions_in_force
    from .services import active_allowlist, evaluate_artifacts, snapshot_artifact_keys

    stored = (SnapshotCompliance.objects.filter(snapshot_id=snapshot.pk)
              .values("compliant", "applied_policies").first())
    if stored is None:
        environment = snapshot.environment
        if not PolicyAttachment.objects.filter(environment=environment).exists() and not active_allowlist(environment):
            return _with_authorization(snapshot, {"compliant": None, "applied_policies": [],
                                                  "artifact_defaults": _unpoliced_fields()}, artifacts)
        if artifacts is None:
            keys = snapshot_artifact_keys(snapshot)
        else:
            keys = [{"name": a["name"], "fingerprint": a.get("fingerprint") or ""}
                    for a in artifacts if a["annotation"]["now"]]
        policies, decisions = evaluate_artifacts(snapshot.org, environment, keys)
        stored = {"compliant": all(d["compliant"] for d in decisions) if policies else None,
                  "applied_policies": [{"name": p.name, "version": p.version} for p in policies],
                  "artifacts": decisions}
    else:
        # The decision ranges in force in this snapshot (none: stored compactly, compliance unknown).
        # A page of artifacts (a web page shows 100) reads only their decisions, not the snapshot's 10,000.
        page = ({a["fingerprint"] for a in artifacts if a.get("fingerprint")}
                if artifacts is not None and len(artifacts) <= PAGE_DECISIONS_UP_TO else None)
        stored["artifacts"] = decisions_at(snapshot.environment_id, snapshot.index, page)
        compact = not stored["artifacts"] and not stored["applied_policies"] and (
            page is None or not decisions_in_force(snapshot.environment_id, snapshot.index).exists())
        if compact:
            return _with_authorization(snapshot, {"compliant": stored["compliant"], "applied_policies": [],
                                                  "artifact_defaults": _unpoliced_fields()}, artifacts)
    answer = {
        "compliant": stored["compliant"],
        "applied_policies": stored["applied_policies"],
        "artifacts": {item["fingerprint"]: _artifact_fields(item) for item in stored["artifacts"]
                      if item.get("fingerprint")},
    }
    if not stored["applied_policies"]:  # allowlist entries only: the rest's compliance is unknown too
        answer["artifact_defaults"] = _unpoliced_fields()
    return _with_authorization(snapshot, answer, artifacts)


def snapshot_list_compliance(environment, snapshots) -> dict[int, dict]:
    """snapshot_list_enricher: ``compliant`` (None when no policy applied) and ``compliance_status``
    per snapshot of a page of the list, from the stored evaluations (one query). A snapshot not
    evaluated yet is unknown when the environment has no policies, else gets the evaluation it would
    have now (normally only the newest snapshot, while its evaluation is running)."""
    from .models import PolicyAttachment, SnapshotCompliance
    from .services import preview_snapshot

    indexes = [s.index for s in snapshots]
    stored = dict(SnapshotCompliance.objects.filter(environment=environment, snapshot_index__in=indexes)
                  .values_list("snapshot_index", "compliant"))
    out = {index: {"compliant": compliant} for index, compliant in stored.items()}
    missing = [s for s in snapshots if s.index not in stored]
    if missing:
        unpoliced = not PolicyAttachment.objects.filter(environment=environment).exists()
        for snapshot in missing:
            if unpoliced:
                out[snapshot.index] = {"compliant": None}
            else:
                snapshot.environment = environment
                out[snapshot.index] = {"compliant": preview_snapshot(snapshot)["compliant"]}
    for fields in out.values():
        fields["compliance_status"] = compliance_state(fields["compliant"])
    return out


def environment_compliance_fields(org, environments) -> dict[int, dict]:
    """environment_enricher: per environment ``compliant`` (None: no policy applies, or not evaluated
    yet), ``compliance_status``, ``policed``, ``unauthorized_count`` (latest evaluation) and
    ``require_authorization``, from ``policies.standing.environment_standings`` (fixed queries); and what
    ``kosli get environment`` / ``list environments`` print: ``policies`` (attached policy names) and
    ``state`` (kosli's name for ``compliant``)."""
    from .models import PolicyAttachment

    attached: dict[int, list[str]] = {}
    for env_id, name in (PolicyAttachment.objects.for_org(org).filter(environment__in=environments)
                         .order_by("policy__name").values_list("environment_id", "policy__name")):
        attached.setdefault(env_id, []).append(name)
    return {env_id: {"compliant": standing["compliant"], "compliance_status": standing["state"],
                     "policed": standing["policed"], "unauthorized_count": standing["unauthorized"],
                     "state": standing["compliant"], "policies": attached.get(env_id, [])}
            for env_id, standing in environment_standings(org, environments).items()}


def authorization_changed(environment_id: int, reason: str, ctx_dict: dict) -> None:
    """environment_settings_changed hook: an environment's ``require_authorization`` changed; its latest
    snapshot is re-evaluated after commit (the unauthorized count, and so a new snapshot, follow)."""
    from .services import request_reevaluation

    request_reevaluation(AuditContext.from_dict(ctx_dict), environment_id, reason)


def artifacts_changed_standing(org, fingerprints, reason: str = "attestation", ctx: AuditContext | None = None) -> int:
    """For the evidence vault: attestations about ``fingerprints`` changed (call inside the writing
    transaction; work starts after commit). Every environment currently running one of them is
    re-evaluated; a new snapshot is appended only where a decision actually changes. Returns how many
    environments were asked.

    Each (environment, fingerprint) also gets a ``DecisionRecheck`` mark in the same transaction, so the
    next evaluation of that environment decides exactly these artifacts again (evaluations only decide
    what changed). ``request=False`` only marks (evidence that used to be picked up by the next
    snapshot's evaluation rather than re-evaluated at once, e.g. a flow's tags)."""
    return _mark_rechecks(org, fingerprints, reason, ctx, request=True)


def _mark_rechecks(org, fingerprints, reason: str, ctx: AuditContext | None, request: bool) -> int:
    from .models import DecisionRecheck, PolicyAttachment
    from .services import request_reevaluation

    if isinstance(fingerprints, (set, list, tuple)):
        wanted = {fp for fp in fingerprints if fp}
        if not wanted:
            return 0
    else:  # a queryset of fingerprints: matched in the database
        wanted = fingerprints
    with_policies = PolicyAttachment.objects.filter(org=org).values_list("environment_id", flat=True)
    pairs = set(
        SnapshotEntry.objects.filter(org=org, fingerprint__in=wanted, to_index=None, environment_id__in=with_policies)
        .values_list("environment_id", "fingerprint").distinct()
    )
    DecisionRecheck.objects.bulk_create([
        DecisionRecheck(org=org, environment_id=environment_id, fingerprint=fingerprint, reason=reason[:200])
        for environment_id, fingerprint in sorted(pairs)
    ])
    environment_ids = sorted({environment_id for environment_id, _ in pairs})
    if request:
        for environment_id in environment_ids:
            request_reevaluation(ctx or AuditContext.system(reason), environment_id, reason)
    return len(environment_ids)


def on_evidence_saved(sender, instance, **kwargs) -> None:
    """post_save of the evidence vault's Artifact and Attestation rows: a new report (provenance) or
    attestation can change the standing of the artifacts it is about, so their environments are
    re-evaluated after the vault's transaction commits."""
    if isinstance(instance, (Flow, Trail)):
        # A flow's tags or a trail's template can change decisions of its artifacts: the next
        # evaluation decides them again (as a full evaluation of the next snapshot used to). A new
        # flow or trail has no artifacts yet; the fingerprints stay a subquery (a flow can have many).
        if not kwargs.get("created"):
            owner = "flow_id" if isinstance(instance, Flow) else "trail_id"
            artifacts = Artifact.objects.filter(**{owner: instance.pk}).values("fingerprint")
            _mark_rechecks(instance.org, artifacts, f"evidence: {type(instance).__name__.lower()}", None, request=False)
        return
    _gate_trail(instance)
    if isinstance(instance, Artifact):
        fingerprints = {instance.fingerprint}
        if kwargs.get("created"):
            _provenance_arrived(instance.org, instance.fingerprint)
    elif instance.artifact_id or instance.artifact_fingerprint:
        fingerprints = {instance.artifact.fingerprint if instance.artifact_id else instance.artifact_fingerprint}
    else:  # a trail-level attestation speaks for every artifact of its trail
        fingerprints = set(Artifact.objects.filter(trail_id=instance.trail_id).values_list("fingerprint", flat=True))
    if isinstance(instance, Attestation) and instance.type == AttestationType.VEX:
        # A VEX document decides through its statements, which the vulns app stores after this commit: mark
        # the artifacts now, and ask for their re-evaluation once the statements are stored, not before.
        _mark_rechecks(instance.org, fingerprints, "evidence: vex", None, request=False)
        request_after_vex(instance.pk)
        return
    artifacts_changed_standing(instance.org, fingerprints, reason=f"evidence: {type(instance).__name__.lower()}")


def _gate_trail(instance) -> None:
    """New evidence on a trail whose flow has Rego gates: its gates are evaluated after commit. A
    decision the gates recorded is not evidence for the next one (no loop)."""
    from .gates import is_decision
    from .models import FlowPolicyAttachment
    from .services import request_trail_gates

    if not getattr(instance, "trail_id", None) or (isinstance(instance, Attestation) and is_decision(instance)):
        return
    if FlowPolicyAttachment.objects.filter(flow_id=instance.flow_id).exists():
        request_trail_gates(instance.trail_id)


def _provenance_arrived(org, fingerprint: str) -> None:
    """A flow reported ``fingerprint``: where it runs in an environment that requires authorization and
    has no policy (policed ones are re-evaluated by ``artifacts_changed_standing``), it may have just
    become authorized, so that environment's unauthorized count is re-evaluated after commit."""
    from .models import PolicyAttachment
    from .services import request_reevaluation

    with_policies = PolicyAttachment.objects.filter(org=org).values_list("environment_id", flat=True)
    requiring = Environment.objects.filter(org=org, require_authorization=True).exclude(pk__in=with_policies)
    environment_ids = sorted(set(
        SnapshotEntry.objects.filter(org=org, fingerprint=fingerprint, to_index=None, environment_id__in=requiring
                                     .values("pk")).values_list("environment_id", flat=True).distinct()))
    for environment_id in environment_ids:
        request_reevaluation(AuditContext.system("evidence: provenance"), environment_id, "evidence: provenance")


def vulnerabilities_matched(org_id: int, match_ids: list[int], cause: str) -> None:
    """``vulns.hooks.matches_added`` (after the matches committed): a new advisory or a new SBOM matched
    artifacts; every environment where one of them runs now is re-evaluated (their vulnerability rules
    and Rego inputs read the matches), as for new evidence."""
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        return
    fingerprints = set(VulnerabilityMatch.objects.filter(org=org, pk__in=list(match_ids))
                       .values_list("artifact_fingerprint", flat=True))
    with transaction.atomic():
        artifacts_changed_standing(org, fingerprints, reason=f"vulnerabilities: new matches ({cause})")


def advisories_changed(advisory_ids: list[int]) -> None:
    """``vulns.hooks.advisories_changed`` (after an import committed): an advisory was created, changed
    (its severity, say) or withdrawn; every org's artifacts with a component it names are re-evaluated
    where they run, so a decision never rests on an advisory as it was."""
    keys = AffectedPackage.objects.filter(advisory_id__in=list(advisory_ids)).values("package_key")
    by_org: dict[int, set[str]] = defaultdict(set)
    for org_id, fingerprint in (ComponentPackage.objects.filter(package_key__in=keys)
                                .values_list("org_id", "artifact_fingerprint").distinct()):
        by_org[org_id].add(fingerprint)
    for org_id, fingerprint in (VulnerabilityMatch.objects.filter(advisory_id__in=list(advisory_ids))
                                .values_list("org_id", "artifact_fingerprint").distinct()):
        by_org[org_id].add(fingerprint)
    for org in Org.objects.filter(pk__in=list(by_org)):
        with transaction.atomic():
            artifacts_changed_standing(org, by_org[org.pk], reason="vulnerabilities: advisories changed")


def request_after_vex(attestation_id: int) -> None:
    """After this transaction commits, have a worker store the VEX attestation's statements and then
    re-evaluate where its artifact runs (``reevaluate_after_vex``)."""
    from .tasks import reevaluate_after_vex as task

    transaction.on_commit(lambda: task.delay(attestation_id))


def reevaluate_after_vex(attestation_id: int) -> int:
    """Store the statements of a ``vex`` attestation (``vulns.vex.index_vex``: idempotent, whichever of
    this and the vulns app's own task comes first stores them) and then re-evaluate every environment
    where its artifact runs, so a suppression is never decided on before it is known. Returns how many
    environments were asked."""
    index_vex(attestation_id)
    attestation = Attestation.objects.select_related("artifact", "org").filter(pk=attestation_id).first()
    if attestation is None:
        return 0
    fingerprint = attestation.artifact.fingerprint if attestation.artifact_id else attestation.artifact_fingerprint
    with transaction.atomic():
        return artifacts_changed_standing(attestation.org, {fingerprint}, reason="evidence: vex")
