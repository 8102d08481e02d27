"""Reads of the policies app that need care; also the functions audit reports use.

- ``latest_compliance(environment)``: the newest ``SnapshotCompliance`` (or None).
- ``compliance_history(environment, limit)``: evaluations newest first.
- ``compliance_series(environment, since, until)``: oldest first, as plain dicts (charts, reports).
- ``non_compliant_periods(environment, since, until)``: ``[{start, end, from_index, to_index}]``
  (``end``/``to_index`` None while still non-compliant).
- ``assert_fingerprint(org, fingerprint, environment, policy_names, flow_name)``: the CI gate answer.
"""

from django.conf import settings
from django.urls import reverse

from evidence.models import Artifact, Flow
from evidence.selectors import artifact_compliance
from snapshots.models import SnapshotEntry

from .evaluation import evaluate_artifact, needs_vulnerabilities
from .facts import gather_facts
from .models import Policy, SnapshotCompliance
from .standing import authorization as _authorization


def latest_compliance(environment) -> SnapshotCompliance | None:
    return SnapshotCompliance.objects.filter(environment=environment).order_by("-snapshot_index").first()


def compliance_history(environment, limit: int = 100) -> list[SnapshotCompliance]:
    rows = SnapshotCompliance.objects.filter(environment=environment).select_related("environment")
    return list(rows.order_by("-snapshot_index")[:limit])


def compliance_series(environment, since=None, until=None, limit: int = 5000) -> list[dict]:
    rows = SnapshotCompliance.objects.filter(environment=environment)
    if since is not None:
        rows = rows.filter(snapshot_at__gte=since)
    if until is not None:
        rows = rows.filter(snapshot_at__lt=until)
    fields = ("snapshot_index", "snapshot_at", "compliant", "changed", "compliant_count", "non_compliant_count",
              "unknown_count", "applied_policies")
    return list(rows.order_by("-snapshot_index").values(*fields)[:limit])[::-1]


def non_compliant_periods(environment, since=None, until=None) -> list[dict]:
    """Periods during which the environment was non-compliant, from the evaluations where it flipped.
    A period that started before ``since`` is reported from the state in force at ``since``. Unknown
    (no policy: ``compliant`` None) is its own state: it ends a non-compliant period without being
    compliant, and never starts one."""
    rows = SnapshotCompliance.objects.filter(environment=environment)
    flips = rows.filter(changed=True)
    if until is not None:
        flips = flips.filter(snapshot_at__lt=until)
    initial = None
    if since is not None:
        initial = rows.filter(snapshot_at__lt=since).order_by("-snapshot_index").first()
        flips = flips.filter(snapshot_at__gte=since)
    periods: list[dict] = []
    current = None
    if initial is not None and initial.compliant is False:
        current = {"start": since, "end": None, "from_index": initial.snapshot_index, "to_index": None}
    for row in flips.order_by("snapshot_index"):
        if row.compliant is False and current is None:
            current = {"start": row.snapshot_at, "end": None, "from_index": row.snapshot_index, "to_index": None}
        elif row.compliant is not False and current is not None:
            current.update(end=row.snapshot_at, to_index=row.snapshot_index)
            periods.append(current)
            current = None
    if current is not None:
        periods.append(current)
    return periods


def _artifact_name(org, fingerprint: str, environment) -> str:
    entry = SnapshotEntry.objects.filter(org=org, fingerprint=fingerprint)
    if environment is not None:
        entry = entry.filter(environment=environment)
    found = entry.order_by("-from_index").values_list("name", flat=True).first()
    return found or ""


class ArtifactNotInFlow(LookupError):
    """The flow scope of an assert names nothing: no such flow, or the artifact is not in it (or in none)."""


def _template_types(artifact: Artifact) -> dict[str, str]:
    template = (artifact.trail.effective_template() if artifact.trail_id else artifact.flow.template) or {}
    types: dict[str, str] = {}
    for entry in template.get("artifacts", []):
        if entry["name"] in ("*", artifact.template_name):
            for item in entry["attestations"]:
                types.setdefault(item["name"], item.get("type") or "")
    return types


def flow_statuses(org, fingerprint: str, flow_name: str = "") -> list[dict]:
    """The artifact judged against the template of every flow that reported it (only ``flow_name``'s
    when given), one entry per report, in kosli's shape: ``{"flow", "trail", "compliant",
    "compliance_status": {"attestations_statuses": [{"attestation_name", "attestation_type", "status"
    ("COMPLETE" | "MISSING"), "is_compliant", "unexpected"}]}}`` — ``unexpected`` marks an attestation
    the template does not ask for. Raises ArtifactNotInFlow when nothing matches (kosli answers 404)."""
    if flow_name and not Flow.objects.for_org(org).filter(name=flow_name).exists():
        raise ArtifactNotInFlow(f"Flow '{flow_name}' does not exist in organization '{org.slug}'")
    records = [r for r in artifact_compliance(org, fingerprint)["records"] if not flow_name or r["flow"] == flow_name]
    if not records:
        where = f"flow '{flow_name}' belonging to " if flow_name else ""
        raise ArtifactNotInFlow(f"Artifact with fingerprint '{fingerprint}' does not exist in {where}"
                                f"organization '{org.slug}'")
    artifacts = (Artifact.objects.for_org(org).select_related("flow", "trail")
                 .in_bulk([record["artifact_id"] for record in records]))
    flows = []
    for record in records:
        expected = _template_types(artifacts[record["artifact_id"]])
        statuses = [{"attestation_name": entry["name"], "attestation_type": entry["type"], "status": "COMPLETE",
                     "is_compliant": bool(entry["effective_compliant"]), "unexpected": entry["name"] not in expected}
                    for entry in record["attestations"]]
        present = {entry["name"] for entry in record["attestations"]}
        statuses += [{"attestation_name": name, "attestation_type": kind, "status": "MISSING", "is_compliant": False,
                      "unexpected": False} for name, kind in expected.items() if name not in present]
        flows.append({"flow": record["flow"], "trail": record["trail"], "compliant": record["compliant"],
                      "reasons": record["reasons"], "compliance_status": {"attestations_statuses": statuses}})
    return flows


def _flow_scope(org, fingerprint: str, flow_name: str) -> dict:
    """kosli's third assert scope (neither environment nor policy): compliant when every flow that
    reported the artifact (or ``flow_name``) finds it compliant against its template."""
    flows = flow_statuses(org, fingerprint, flow_name)
    reasons = [f"{flow['flow']}: {reason}" for flow in flows for reason in flow["reasons"]]
    compliant = not reasons
    latest = flows[-1]
    return {
        "compliant": compliant,
        "status": "compliant" if compliant else "non-compliant",
        "scope": "flow",
        "fingerprint": fingerprint,
        "artifact_name": _artifact_name(org, fingerprint, None),
        "environment": None,
        "flow": latest["flow"],
        "trail": latest["trail"],
        "has_provenance": True,
        "applied_policies": [],
        "policy_evaluations": [],
        "reasons_for_incompliance": reasons,
        "flows": flows,
        "html_url": settings.CSM_BASE_URL + reverse("artifact-detail", args=[org.slug, fingerprint]),
    }


def assert_fingerprint(org, fingerprint: str, environment=None, policy_names: list[str] | None = None,
                       flow_name: str = "") -> dict:
    """Would this artifact be compliant in ``environment`` (its attached policies and allowlist) or
    against ``policy_names``? Never writes. When no policy applies to the scope the answer is
    ``compliant: null`` with ``status: "unknown"`` (nothing was checked: never compliant by default);
    ``authorized`` says apart whether the artifact may run there (provenance or allowlist entry).

    With neither, the scope is ``flow`` as in kosli: the artifact against its flows' templates
    (``flow_name`` narrows to one flow). Every answer carries ``flows`` (what ``kosli assert artifact``
    prints per flow); ``flow_name`` narrows it and raises ArtifactNotInFlow when the artifact is not there."""
    from . import services

    if environment is None and not policy_names:
        return _flow_scope(org, fingerprint, flow_name)

    if policy_names:
        policies_by_name = {p.name: p for p in Policy.objects.for_org(org).filter(name__in=policy_names)}
        missing = [name for name in policy_names if name not in policies_by_name]
        if missing:
            raise services.PolicyServiceError(f"No policy named {', '.join(map(repr, missing))}.", "policy_name",
                                              404, "not_found")
        policies = []
        for name in policy_names:
            policy = policies_by_name[name]
            version = policy.versions.filter(version=policy.latest_version).first()
            policies.append(services.applied_policy(policy, version))
    else:
        policies = services.attached_policies(environment)
    allowlist = services.active_allowlist(environment) if environment is not None else {}
    name = _artifact_name(org, fingerprint, environment)
    facts = gather_facts(org, [{"name": name, "fingerprint": fingerprint}],
                         vulnerabilities=needs_vulnerabilities(policies))[(name, fingerprint)]
    entry = allowlist.get(fingerprint)
    rego_results = services.run_rego(policies, {(name, fingerprint): facts}, environment)
    decision = evaluate_artifact(facts, policies, entry.as_decision() if entry else None,
                                 rego_results.get((name, fingerprint)))
    reported = {fingerprint} if facts.has_provenance else set()
    authorized = _authorization(fingerprint, reported, set(allowlist),
                                environment.require_authorization if environment is not None else True)
    env_part = f"/o/{org.slug}/environments/{environment.name}" if environment is not None else f"/o/{org.slug}"
    try:
        flows = flow_statuses(org, fingerprint, flow_name)
    except ArtifactNotInFlow:
        if flow_name:
            raise
        flows = []  # no flow reported it: the policies judge that (provenance), nothing to list per flow
    return {
        "compliant": decision["compliant"],
        "status": decision["status"],
        **authorized,
        "scope": "environment" if environment is not None and not policy_names else "policy",
        "fingerprint": fingerprint,
        "artifact_name": name,
        "environment": environment.name if environment is not None else None,
        "flow": facts.flow_name or "",
        "trail": facts.trail_name or "",
        "has_provenance": facts.has_provenance,
        "allowlisted": decision["allowlisted"],
        "allowlist_entry": decision["allowlist_entry"],
        "applied_policies": [{"name": p.name, "version": p.version} for p in policies],
        "policy_evaluations": decision["policy_decisions"],
        "reasons_for_incompliance": decision["reasons_for_incompliance"],
        "compliance_status": {
            "attestations_statuses": [
                {"attestation_name": att.get("name"), "attestation_type": att.get("type"),
                 "status": "COMPLIANT" if att.get("compliant") else "NON-COMPLIANT",
                 "is_compliant": bool(att.get("compliant")), "unexpected": False}
                for att in facts.attestations
            ],
        },
        "flows": flows,
        "html_url": f"{settings.CSM_BASE_URL}{env_part}",
    }
