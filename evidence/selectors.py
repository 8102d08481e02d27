"""Reads of the evidence vault that need care: compliance, provenance, where an artifact runs.

For other parts of csm (policies, reports, snapshots):

- ``artifact_compliance(org, fingerprint)``: is this artifact compliant, and if not, why.
- ``provenance_for(org, fingerprints)``: per fingerprint, which flow built it, from which commit, and its
  compliance — batched (a fixed number of queries for any number of fingerprints).
- ``attestations_for(org, fingerprint)``: the latest attestation per name about an artifact (effective
  compliance, overrides applied).
- ``trail_compliance(trail)``: a trail's compliance against its template.

Compliance rules: the latest attestation of each name counts (older ones stay visible but are
superseded) — except that a failing attestation csm verified from evidence can only be superseded by a
newer one of the same type that carries evidence (``may_supersede``); an override applies to the
attestation it names until a newer one of that name arrives; every attestation the template requires
must be present ("missing attestation X") and every effective attestation compliant ("attestation X is
non-compliant").
"""

import re
from collections import defaultdict

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from csm.errors import ServiceError
from csm.lib.fingerprints import is_fingerprint, is_fingerprint_prefix
from evidence.choices import AttestationType, Verification
from evidence.models import Artifact, Attestation, Flow, FlowName, Trail
from snapshots.selectors import fingerprint_history

HEX = re.compile(r"^[0-9a-f]{4,64}$")


def _order(attestation: Attestation):
    return (attestation.created_at, attestation.pk)


FROM_EVIDENCE = (Verification.VERIFIED, Verification.MISMATCH)  # csm judged it from files / data itself


def may_supersede(current: Attestation, newer: Attestation) -> bool:
    """Whether ``newer`` (same name, same scope) replaces ``current`` for compliance.

    A failing attestation csm verified from its evidence (JUnit files with failures, a SARIF file over the
    threshold, custom data breaking the rule) holds until a newer attestation of the same type (and custom
    type) that csm again judged from evidence: a ``generic`` saying ``is_compliant: true``, or a client
    summary without files, must not turn it green. An override (``evidence.override`` + a reason) is the
    way to accept it anyway."""
    if current.is_compliant or current.verification not in FROM_EVIDENCE:
        return True
    return (_judged_alike(newer.type) == _judged_alike(current.type) and newer.custom_type_id == current.custom_type_id
            and newer.verification in FROM_EVIDENCE)


def _judged_alike(kind: str) -> str:
    # kosli's `attest snyk` uploads SARIF too, judged by the same parser and threshold
    return AttestationType.SARIF if kind == AttestationType.SNYK else kind


def effective_attestation(attestations) -> Attestation | None:
    """The attestation that counts among same-name, same-scope non-override ``attestations``."""
    effective = None
    for attestation in sorted(attestations, key=_order):
        if effective is None or may_supersede(effective, attestation):
            effective = attestation
    return effective


def evaluate(required: list[str], attestations, controls: dict[str, str] | None = None) -> dict:
    """Compliance of one scope (a trail or an artifact) from its attestations and required names.
    ``controls`` maps a required name to the control its template entry names: the attestation of that
    name must then be a decision on that control."""
    latest: dict[str, Attestation] = {}
    overrides: dict[str, Attestation] = {}
    held: dict[str, list[int]] = defaultdict(list)  # newer attestations that could not supersede
    for attestation in sorted(attestations, key=_order):
        name = attestation.name
        if attestation.type == AttestationType.OVERRIDE:
            overrides[name] = attestation
        elif name not in latest or may_supersede(latest[name], attestation):
            latest[name] = attestation
        else:
            held[name].append(attestation.pk)
    reasons = [f"missing attestation {name}" for name in required if name not in latest]
    entries = []
    for name, attestation in sorted(latest.items()):
        override = overrides.get(name)
        overridden = override is not None and override.results.get("overrides") == attestation.pk
        effective = override.is_compliant if overridden else attestation.is_compliant
        entries.append({"name": name, "type": attestation.type_label, "id": attestation.pk,
                        "is_compliant": attestation.is_compliant, "effective_compliant": effective,
                        "overridden": overridden, "override_reason": override.reason if overridden else "",
                        "verification": attestation.verification, "created_at": attestation.created_at,
                        "required": name in required, "not_superseded_by": held.get(name, [])})
        entries[-1]["control"] = attestation.results.get("control") \
            if attestation.type == AttestationType.DECISION else None
        wanted = (controls or {}).get(name)
        if wanted and entries[-1]["control"] != wanted:
            reasons.append(f"attestation {name} must be a decision on control {wanted}")
        elif not effective:
            reasons.append(f"attestation {name} is non-compliant")
    return {"compliant": not reasons, "reasons": reasons, "attestations": entries}


def required_controls(items) -> dict[str, str]:
    """``{name: control}`` of the template entries that require a decision on a control."""
    return {item["name"]: item["control"] for item in items if item.get("control")}


def required_for_artifact(template: dict, template_name: str) -> list[str]:
    return [item["name"] for item in required_items_for_artifact(template, template_name)]


def required_items_for_artifact(template: dict, template_name: str) -> list[dict]:
    items: list[dict] = []
    for entry in (template or {}).get("artifacts", []):
        if entry["name"] in ("*", template_name):
            items.extend(item for item in entry["attestations"] if item["name"] not in {i["name"] for i in items})
    return items


def _artifact_template(artifact: Artifact) -> dict:
    return artifact.trail.effective_template() if artifact.trail_id else artifact.flow.template


def artifact_record_compliance(artifact: Artifact, attestations=None) -> dict:
    """Compliance of one artifact report (one flow's view of a fingerprint)."""
    if attestations is None:
        attestations = list(artifact.attestations.select_related("custom_type"))
    required = required_items_for_artifact(_artifact_template(artifact), artifact.template_name)
    result = evaluate([item["name"] for item in required], attestations, required_controls(required))
    result.update({"flow": artifact.flow.name, "trail": artifact.trail.name if artifact.trail_id else "",
                   "artifact_id": artifact.pk})
    return result


def trail_compliance(trail: Trail) -> dict:
    """A trail's compliance: its own required attestations, its required artifacts, and each artifact's."""
    template = trail.effective_template() or {}
    attestations = [a for a in trail.attestations.select_related("custom_type")
                    if a.artifact_id is None and not a.target_artifact and not a.artifact_fingerprint]
    result = evaluate([item["name"] for item in template.get("trail", [])], attestations,
                      required_controls(template.get("trail", [])))
    artifacts = list(trail.artifacts.select_related("flow", "trail"))
    by_template = {artifact.template_name for artifact in artifacts}
    for entry in template.get("artifacts", []):
        if entry["name"] != "*" and entry["name"] not in by_template:
            result["reasons"].append(f"missing artifact {entry['name']}")
    result["artifacts"] = []
    for artifact in artifacts:
        record = artifact_record_compliance(artifact)
        result["artifacts"].append({"fingerprint": artifact.fingerprint, "name": artifact.template_name
                                    or artifact.filename, "template_name": artifact.template_name,
                                    "filename": artifact.filename, "compliant": record["compliant"],
                                    "reasons": record["reasons"], "attestations": record["attestations"]})
        if not record["compliant"]:
            result["reasons"].append(f"artifact {artifact.template_name or artifact.filename} is non-compliant")
    result["compliant"] = not result["reasons"]
    return result


_SQLITE_CHUNK = 500  # under SQLite's bound-parameter limit


def _reports_of(org, fingerprints: list[str]) -> list[Artifact]:
    """Every report of ``fingerprints``, oldest first. On PostgreSQL one index-backed query whatever the
    number of fingerprints: they travel as ONE text parameter split server-side
    (``fingerprint = ANY(string_to_array(%s, ','))``) — neither thousands of bound parameters Django would
    compile into an IN list nor a 10,000-element array psycopg would adapt element by element (5× slower).
    A fingerprint is hex; one containing a comma cannot have been reported and is left out."""
    fingerprints = [fp for fp in fingerprints if "," not in fp]
    if not fingerprints:
        return []
    base = (Artifact.objects.for_org(org).select_related("flow", "trail", "trail__flow")
            .order_by("created_at", "id"))
    if connection.vendor == "postgresql":
        column = f'"{Artifact._meta.db_table}"."fingerprint"'  # our own table name; values are bound
        wanted = RawSQL(f"{column} = ANY(string_to_array(%s, ','))", (",".join(fingerprints),),  # noqa: S611 - own table name, values bound  # nosec B611
                        output_field=BooleanField())
        return list(base.alias(wanted=wanted).filter(wanted=True))
    found = [a for start in range(0, len(fingerprints), _SQLITE_CHUNK)
             for a in base.filter(fingerprint__in=fingerprints[start:start + _SQLITE_CHUNK])]
    found.sort(key=lambda a: (a.created_at, a.pk))
    return found


def _records(org, fingerprints) -> tuple[dict[str, list[Artifact]], dict[int, list[Attestation]]]:
    artifacts = _reports_of(org, sorted(fingerprints))
    by_fingerprint: dict[str, list[Artifact]] = defaultdict(list)
    for artifact in artifacts:
        by_fingerprint[artifact.fingerprint].append(artifact)
    attestations: dict[int, list[Attestation]] = defaultdict(list)
    if artifacts:
        for attestation in (Attestation.objects.for_org(org).filter(artifact__in=[a.pk for a in artifacts])
                            .select_related("custom_type")):
            attestations[attestation.artifact_id].append(attestation)
    return by_fingerprint, attestations


def _combine(fingerprint: str, records: list[Artifact], attestations: dict[int, list[Attestation]]) -> dict:
    if not records:
        return {"fingerprint": fingerprint, "provenance": False, "compliant": None,
                "reasons": [NO_PROVENANCE_REASON], "records": []}
    evaluated = [artifact_record_compliance(artifact, attestations.get(artifact.pk, [])) for artifact in records]
    reasons = [f"{record['flow']}: {reason}" for record in evaluated for reason in record["reasons"]]
    return {"fingerprint": fingerprint, "provenance": True, "compliant": not reasons, "reasons": reasons,
            "records": evaluated}


def artifact_compliance(org, fingerprint: str) -> dict:
    """``{"fingerprint", "provenance": bool, "compliant": bool | None, "reasons": [str], "records": [...]}``.

    ``compliant`` is None when no flow reported the fingerprint (no provenance); otherwise True only when
    every flow that reported it has every required attestation, each compliant. ``records`` has one
    entry per report (flow, trail, per-attestation detail)."""
    by_fingerprint, attestations = _records(org, [fingerprint])
    return _combine(fingerprint, by_fingerprint.get(fingerprint, []), attestations)


def provenance_for(org, fingerprints) -> dict[str, dict]:
    """Per fingerprint: ``{"provenance": bool, "flow", "flows", "trail", "git_commit", "commit_url",
    "build_url", "repo_url", "artifact_compliant": bool | None, "compliance_reasons": [str]}`` (flow
    fields from the latest report). Every requested fingerprint gets an entry; ``provenance`` False
    means no flow reported it (those entries are one shared dict: read, do not modify). A fixed number of
    queries, whatever the number of fingerprints."""
    wanted = {fp for fp in fingerprints if fp}
    by_fingerprint, attestations = _records(org, wanted)
    out = {}
    for fingerprint, records in by_fingerprint.items():
        combined = _combine(fingerprint, records, attestations)
        latest = records[-1]
        out[fingerprint] = {
            "provenance": True,
            "flow": latest.flow.name,
            "flows": sorted({record.flow.name for record in records}),
            "trail": latest.trail.name if latest.trail_id else None,
            "git_commit": latest.git_commit,
            "commit_url": latest.commit_url,
            "build_url": latest.build_url,
            "repo_url": latest.repo_url,
            "artifact_compliant": combined["compliant"],
            "compliance_reasons": combined["reasons"],
        }
    # The rest has no provenance: one constant answer, shared (read-only) by all of them.
    missing = {**NO_PROVENANCE, "flows": [], "compliance_reasons": [NO_PROVENANCE_REASON]}
    out.update(dict.fromkeys(wanted.difference(out), missing))
    return out


NO_PROVENANCE_REASON = "no provenance: no flow reported this artifact"
NO_PROVENANCE = {"provenance": False, "flow": None, "flows": [], "trail": None, "git_commit": None,
                 "commit_url": None, "build_url": None, "repo_url": None, "artifact_compliant": None,
                 "compliance_reasons": [NO_PROVENANCE_REASON]}


def attestations_for(org, fingerprint: str) -> dict[str, dict]:
    """The latest attestation per name about an artifact across every flow that reported it:
    ``{name: {"type", "is_compliant" (effective), "overridden", "flow", "id"}}``."""
    out: dict[str, dict] = {}
    for record in artifact_compliance(org, fingerprint)["records"]:
        for entry in record["attestations"]:
            out[entry["name"]] = {"type": entry["type"], "is_compliant": entry["effective_compliant"],
                                  "overridden": entry["overridden"], "flow": record["flow"], "id": entry["id"]}
    return out


AMBIGUOUS_LISTED = 5  # how many of the matching fingerprints an ambiguous-prefix error names


def latest_commit(org, flow: Flow, fingerprint: str, branch: str = "") -> str | None:
    """The git commit of ``flow``'s most recent artifact report other than ``fingerprint`` (on ``branch``
    when given: its ``git_commit_info.branch``), or None. ``kosli report artifact`` asks for it first and
    sends the commits between it and the new artifact's commit as ``commits_list``."""
    reports = Artifact.objects.for_org(org).filter(flow=flow).exclude(fingerprint=fingerprint).exclude(git_commit="")
    if branch:
        reports = reports.filter(git_commit_info__branch=branch)
    return reports.order_by("-created_at", "-pk").values_list("git_commit", flat=True).first()


def resolve_fingerprint(org, flow: Flow, value: str) -> str:
    """The full fingerprint ``value`` names in ``flow``: itself when it has 64 hex digits, else the one
    fingerprint the flow reported that starts with it (kosli ``get artifact flow@184c7`` takes a unique
    prefix of 5 to 64 digits). Not hex, or shorter than 5: 400. No match: 404. Two or more: 400 naming a
    few of them, so the person can type a longer prefix — not 409, which the CLI's HTTP client takes for a
    lock conflict and retries (``internal/requests/requests.go`` checkRetry)."""
    if is_fingerprint(value):
        return value
    if not is_fingerprint_prefix(value):
        raise ServiceError("fingerprint must be 5 to 64 lowercase hex digits (a SHA-256 digest or a unique "
                           "prefix of one)", "fingerprint")
    matches = list(Artifact.objects.for_org(org).filter(flow=flow, fingerprint__startswith=value)
                   .order_by("fingerprint").values_list("fingerprint", flat=True).distinct()[:AMBIGUOUS_LISTED + 1])
    if not matches:
        raise ServiceError(f"Artifact with fingerprint prefix '{value}' does not exist in flow '{flow.name}'",
                           "fingerprint", code="not_found")
    if len(matches) > 1:
        listed = ", ".join(matches[:AMBIGUOUS_LISTED]) + (", ..." if len(matches) > AMBIGUOUS_LISTED else "")
        raise ServiceError(f"Fingerprint prefix '{value}' is ambiguous in flow '{flow.name}': it matches "
                           f"{listed}. Give more digits.", "fingerprint")
    return matches[0]


def where_it_runs(org, fingerprint: str) -> list[dict]:
    """Where the artifact runs now and ran before, from the snapshot journal:
    ``[{environment, from_index, to_index, from_time, to_time, running}]`` (``snapshots.selectors``)."""
    return fingerprint_history(org, fingerprint)


def search_commits(org, prefix: str) -> list[dict]:
    """Artifacts whose git commit starts with ``prefix`` (hex, at least 4 characters)."""
    prefix = (prefix or "").lower()
    if not HEX.match(prefix):
        return []
    artifacts = (Artifact.objects.for_org(org).filter(git_commit__startswith=prefix)
                 .select_related("flow", "trail").order_by("-created_at")[:50])
    return [{"kind": "git_commit", "git_commit": a.git_commit, "fingerprint": a.fingerprint, "name": a.filename,
             "flow": a.flow.name, "trail": a.trail.name if a.trail_id else "", "commit_url": a.commit_url}
            for a in artifacts]


def search_fingerprints(org, prefix: str, limit: int = 20) -> list[dict]:
    """Fingerprints a flow reported that start with ``prefix`` (5-64 hex), one match each (its latest
    report), at most ``limit`` + 1: the fingerprint search also finds artifacts built but never seen
    running (``kosli search`` does)."""
    prefix = (prefix or "").lower()
    if not is_fingerprint_prefix(prefix):
        return []
    fingerprints = list(Artifact.objects.for_org(org).filter(fingerprint__startswith=prefix).order_by("fingerprint")
                        .values_list("fingerprint", flat=True).distinct()[: limit + 1])
    latest: dict[str, Artifact] = {}
    for artifact in (Artifact.objects.for_org(org).filter(fingerprint__in=fingerprints)
                     .select_related("flow", "trail").order_by("created_at", "id")):
        latest[artifact.fingerprint] = artifact
    return [{"kind": "fingerprint", "fingerprint": fp, "name": a.filename or a.template_name, "flow": a.flow.name,
             "trail": a.trail.name if a.trail_id else "", "git_commit": a.git_commit}
            for fp, a in sorted(latest.items())]


def search_names(org, text: str, limit: int = 50) -> list[dict]:
    """Flows and trails whose name contains ``text`` and artifacts reported under a file or template name
    containing it (case-insensitive), for the web search (snapshots.hooks.name_search_matcher). Three
    queries, each at most ``limit`` rows."""
    flows = Flow.objects.filter(org=org, name__icontains=text).order_by("name").values_list("name", flat=True)[:limit]
    trails = (Trail.objects.filter(org=org, name__icontains=text).select_related("flow")
              .order_by("-created_at")[:limit])
    artifacts = (Artifact.objects.for_org(org).filter(Q(filename__icontains=text) | Q(template_name__icontains=text))
                 .select_related("flow", "trail").order_by("-created_at")[:limit])
    return ([{"kind": "flow", "flow": name} for name in flows]
            + [{"kind": "trail", "flow": t.flow.name, "trail": t.name, "git_commit": t.git_commit} for t in trails]
            + [{"kind": "artifact", "name": a.filename or a.template_name, "fingerprint": a.fingerprint,
                "flow": a.flow.name, "trail": a.trail.name if a.trail_id else "", "git_commit": a.git_commit,
                "commit_url": a.commit_url} for a in artifacts])


def latest_trails(flow: Flow, limit: int = 20):
    return flow.trails.all()[:limit]


def flow_named(org, name: str) -> Flow | None:
    """The flow called ``name`` now, or the flow that was called so before a rename while that old name is
    not released (kosli ``rename flow``: "the flow will remain accessible under its old name until that
    name is taken by another flow")."""
    flow = Flow.objects.for_org(org).filter(name=name).first()
    if flow is None:
        former = FlowName.objects.for_org(org).filter(name=name, released_at=None).select_related("flow").first()
        flow = former.flow if former is not None else None
    return flow


def flow_or_404(org, name: str) -> Flow:
    """``flow_named`` or a 404 in kosli's words (the CLI prints the message)."""
    flow = flow_named(org, name)
    if flow is None:
        raise ServiceError(f"Flow named '{name}' does not exist for organization '{org.slug}'", "flow",
                           code="not_found")
    return flow
