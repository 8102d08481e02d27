"""Reads of the policies app that need care; also the functions audit reports use.

- ``latest_compliance(environment)``: the newest ``SnapshotCompliance`` (or None).
- ``compliance_history(environment, limit)``: evaluations newest first.
- ``compliance_series(environment, since, until)``: oldest first, as plain dicts (charts, reports).
- ``non_compliant_periods(environment, since, until)``: ``[{start, end, from_index, to_index}]``
  (``end``/``to_index`` None while still non-compliant).
- ``assert_fingerprint(org, fingerprint, environment, policy_names)``: the CI gate answer.
"""

from django.conf import settings

from snapshots.models import SnapshotEntry

from .evaluation import AppliedPolicy, evaluate_artifact
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


def assert_fingerprint(org, fingerprint: str, environment=None, policy_names: list[str] | None = None) -> dict:
    """Would this artifact be compliant in ``environment`` (its attached policies and allowlist) or
    against ``policy_names``? Never writes. When no policy applies to the scope the answer is
    ``compliant: null`` with ``status: "unknown"`` (nothing was checked: never compliant by default);
    ``authorized`` says apart whether the artifact may run there (provenance or allowlist entry)."""
    from . import services

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
            policies.append(AppliedPolicy(name, version.version, version.document))
    else:
        policies = services.attached_policies(environment)
    allowlist = services.active_allowlist(environment) if environment is not None else {}
    name = _artifact_name(org, fingerprint, environment)
    facts = gather_facts(org, [{"name": name, "fingerprint": fingerprint}])[(name, fingerprint)]
    entry = allowlist.get(fingerprint)
    decision = evaluate_artifact(facts, policies, entry.as_decision() if entry else None)
    reported = {fingerprint} if facts.has_provenance else set()
    authorized = _authorization(fingerprint, reported, set(allowlist),
                                environment.require_authorization if environment is not None else True)
    env_part = f"/o/{org.slug}/environments/{environment.name}" if environment is not None else f"/o/{org.slug}"
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
        "html_url": f"{settings.CSM_BASE_URL}{env_part}",
    }
