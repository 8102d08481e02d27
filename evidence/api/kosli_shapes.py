"""The fields the kosli CLI reads from ``get artifact`` and ``get trail`` / ``evaluate trail(s)``, with
kosli's names and types, added to csm's own answer (csm's fields stay as they are).

The CLI decodes these answers into ``map[string]interface{}`` and type-asserts what it prints: a string
where it expects a number, or a missing key it asserts to be a string, panics or errors
(``cmd/kosli/getArtifact.go`` printArtifactsJsonAsTable, ``cmd/kosli/getTrail.go`` printTrailAsTable /
eventFields, ``internal/evaluate/transform.go``). Times it prints are epoch seconds (``formattedTimestamp``);
times a Rego policy reads from ``attestations_statuses`` are RFC 3339 strings (kosli's
``internal/evaluate/opa_contract_test.go`` parses them with ``time.parse_rfc3339_ns``)."""

from django.urls import reverse

from evidence.selectors import required_for_artifact, where_it_runs
from snapshots.selectors import epoch, run_events

COMPLIANT, NON_COMPLIANT, INCOMPLETE, MISSING = "COMPLIANT", "NON-COMPLIANT", "INCOMPLETE", "MISSING"


def rfc3339(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def state_of(compliant: bool | None, attestations: list[dict]) -> str:
    """kosli's compliance state from csm's compliance and its evaluated attestations (``evaluate``'s
    entries): COMPLIANT; NON-COMPLIANT when an attestation is effectively non-compliant; otherwise
    INCOMPLETE (something required is only missing, or csm cannot say: no provenance)."""
    if compliant:
        return COMPLIANT
    if any(entry["effective_compliant"] is False for entry in attestations):
        return NON_COMPLIANT
    return INCOMPLETE


def _run(run: dict, index_key: str) -> dict:
    return {**run, "environment_name": run["environment"], "snapshot_index": run[index_key]}


def artifact_fields(request, org, artifact, records, attestations, compliance: dict, runs: list[dict],
                    kosli_cli: bool) -> dict:
    """kosli's artifact answer fields for ``artifact`` (the report csm shows first) and every report of its
    fingerprint. ``running`` keeps csm's meaning (every run, ``running`` true or false) for csm's clients;
    the kosli CLI prints every entry of ``running`` as "Running in environments", so it gets only the runs
    still going and reads the ended ones from ``exited``."""
    current = [_run(run, "last_index") for run in runs if run["running"]]
    ended = [{**_run(run, "to_index"), "timestamp": epoch(run["to_time"])} for run in runs if not run["running"]]
    history = [{"event": f"{record.template_name or record.filename or record.fingerprint[:7]} reported in flow "
                         f"{record.flow.name}" + (f" trail {record.trail.name}" if record.trail_id else ""),
                "timestamp": epoch(record.created_at)} for record in records]
    history += [{"event": f"{attestation.name} attestation ({attestation.type_label}) reported",
                 "timestamp": epoch(attestation.created_at)} for attestation in attestations]
    history += run_events(runs)
    history.sort(key=lambda event: event["timestamp"] or 0)
    fields = {
        "flow_name": artifact.flow.name,
        "trail_name": artifact.trail.name if artifact.trail_id else None,
        "template_reference_name": artifact.template_name or None,
        "filename": artifact.filename or "",
        "git_commit": artifact.git_commit or "", "commit_url": artifact.commit_url or "",
        "build_url": artifact.build_url or "",
        "html_url": request.build_absolute_uri(reverse("artifact-detail", args=[org.slug, artifact.fingerprint])),
        "state": state_of(compliance["compliant"],
                          [entry for record in compliance["records"] for entry in record["attestations"]]),
        "created_at": epoch(artifact.created_at), "created_at_iso": artifact.created_at,
        "exited": ended, "history": history,
    }
    if kosli_cli:
        fields["running"] = current
    return fields


def attestation_id(pk: int) -> str:
    """kosli's ``attestation_id`` of a csm attestation: its id as a string (the CLI asserts ``.(string)``
    and sends it back to ``GET /api/v2/attestations/{org}?attestation_id=``)."""
    return str(pk)


def attestation_url(request, org, attestation) -> str:
    return request.build_absolute_uri(reverse("attestation-detail", args=[
        org.slug, attestation.flow.name, attestation.trail.name, attestation.pk]))


def _number(value) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal() and len(value) <= 20:
        return int(value)
    return 0


def commit_fields(info) -> dict | None:
    """``git_commit_info`` as ``cmd/kosli/getAttestation.go`` ``GitCommitInfo`` decodes it: ``sha1``,
    ``author``, ``message``, ``branch``, ``url`` strings and ``timestamp`` a number (a string there fails the
    whole decode). None when the attestation names no commit."""
    if not isinstance(info, dict) or not info.get("sha1"):
        return None
    out = {key: info.get(key) if isinstance(info.get(key), str) else "" for key in ("sha1", "author", "message",
                                                                                   "branch")}
    out["url"] = info.get("url") if isinstance(info.get("url"), str) else ""
    out["timestamp"] = _number(info.get("timestamp"))
    return out


def attestation_fields(request, org, attestation) -> dict:
    """The fields ``kosli get attestation`` decodes into its ``Attestation`` struct
    (``cmd/kosli/getAttestation.go``): ``attestation_name``, ``attestation_type``, ``is_compliant`` (bool),
    ``artifact_fingerprint`` (string; null when none, as in csm's answer: Go decodes null into ""),
    ``created_at`` (epoch seconds, a
    float64 there), ``git_commit_info`` (left out when none), ``html_url``; plus ``attestation_id``.
    csm's ISO time is ``created_at_iso``."""
    fields = {
        "attestation_id": attestation_id(attestation.pk), "attestation_name": attestation.name,
        "attestation_type": attestation.type_label, "is_compliant": bool(attestation.is_compliant),
        "created_at": epoch(attestation.created_at), "created_at_iso": attestation.created_at,
        "html_url": attestation_url(request, org, attestation),
        "flow_name": attestation.flow.name, "trail_name": attestation.trail.name,
    }
    fingerprint = attestation.artifact.fingerprint if attestation.artifact_id else attestation.artifact_fingerprint
    fields["artifact_fingerprint"] = fingerprint or None
    commit = commit_fields(attestation.git_commit_info)
    if commit is not None:
        fields["git_commit_info"] = commit
    return fields


def _attestation_status(request, org, trail, attestation, name: str, kind: str, required: bool) -> dict:
    """One entry of kosli's ``attestations_statuses``. ``attestation_id`` is csm's id as a string: ``kosli
    evaluate`` fetches each from ``GET /api/v2/attestations/{org}?attestation_id=`` to enrich its Rego input
    (``cmd/kosli/evaluateHelpers.go``); ``csm_id`` is the same id as a number."""
    if attestation is None:
        return {"attestation_name": name, "attestation_type": kind, "attestation_id": None, "csm_id": None,
                "status": MISSING, "is_compliant": None, "compliant": None, "unexpected": False,
                "html_url": None, "created_at": None}
    compliant = attestation["effective_compliant"]
    url = reverse("attestation-detail", args=[org.slug, trail.flow.name, trail.name, attestation["id"]])
    return {"attestation_name": name, "attestation_type": attestation["type"],
            "attestation_id": attestation_id(attestation["id"]),
            "csm_id": attestation["id"], "status": "COMPLETE", "is_compliant": compliant, "compliant": compliant,
            "unexpected": not required, "html_url": request.build_absolute_uri(url),
            "created_at": rfc3339(attestation["created_at"])}


def _statuses(request, org, trail, expected: list[dict], evaluated: dict) -> list[dict]:
    """Every expected attestation (MISSING when not reported) then every reported one the template does not
    name (``unexpected``), like kosli's trail answer."""
    reported = {entry["name"]: entry for entry in evaluated["attestations"]}
    out = [_attestation_status(request, org, trail, reported.get(item["name"]), item["name"],
                               item.get("type", "generic"), True) for item in expected]
    expected_names = {item["name"] for item in expected}
    out += [_attestation_status(request, org, trail, entry, name, entry["type"], False)
            for name, entry in reported.items() if name not in expected_names]
    return out


def _commit(info: dict) -> dict | None:
    return info or None


def trail_events(org, trail) -> list[dict]:
    """kosli's trail ``events``, oldest first, with the fields ``cmd/kosli/getTrail.go`` eventFields reads
    for each ``type``: ``timestamp`` (epoch seconds, asserted float64), ``is_compliant``,
    ``git_commit_info``, ``attestation_type``, ``template_reference_name``, ``target_artifact``,
    ``artifact_name``, ``environment_name``, ``snapshot_index``. ``attestation_id`` is a string, as in
    ``attestations_statuses`` (``getTrail.go`` links it to the trail page as ``?attestation_id=``)."""
    events = [{"type": "trail_reported", "timestamp": epoch(trail.created_at),
               "git_commit_info": _commit(trail.git_commit_info)}]
    artifacts = list(trail.artifacts.all())
    by_id = {artifact.pk: artifact for artifact in artifacts}
    for artifact in artifacts:
        name = artifact.template_name or artifact.filename
        events.append({"type": "artifact_creation_reported", "timestamp": epoch(artifact.created_at),
                       "artifact_name": artifact.filename, "template_reference_name": name,
                       "fingerprint": artifact.fingerprint, "git_commit_info": _commit(artifact.git_commit_info)})
        for run in where_it_runs(org, artifact.fingerprint):
            if run["from_time"] is not None:
                events.append({"type": "artifact_started_running", "timestamp": epoch(run["from_time"]),
                               "template_reference_name": name, "environment_name": run["environment"],
                               "snapshot_index": run["from_index"]})
            if run["to_time"] is not None:
                events.append({"type": "artifact_stopped_running", "timestamp": epoch(run["to_time"]),
                               "template_reference_name": name, "environment_name": run["environment"],
                               "snapshot_index": run["to_index"]})
    for attestation in trail.attestations.select_related("custom_type"):
        event = {"timestamp": epoch(attestation.created_at), "attestation_type": attestation.type_label,
                 "template_reference_name": attestation.name,
                 "attestation_id": attestation_id(attestation.pk), "csm_id": attestation.pk,
                 "is_compliant": attestation.is_compliant, "git_commit_info": _commit(attestation.git_commit_info)}
        bound = by_id.get(attestation.artifact_id)
        if bound is not None or attestation.target_artifact or attestation.artifact_fingerprint:
            event["type"] = "artifact_attestation_reported"
            event["target_artifact"] = (bound.template_name or bound.filename) if bound is not None \
                else attestation.target_artifact or attestation.artifact_fingerprint
        else:
            event["type"] = "trail_attestation_reported"
        events.append(event)
    events.sort(key=lambda event: event["timestamp"])
    return events


def trail_fields(request, org, trail, compliance: dict, kosli_cli: bool) -> dict:
    """kosli's ``compliance_state``, ``is_compliant``, ``last_modified_at`` and ``compliance_status``
    (``status``, ``is_compliant``, ``attestations_statuses`` list, ``artifacts_statuses`` keyed by template
    name) for a trail, from csm's ``trail_compliance``."""
    template = trail.effective_template() or {}
    state = state_of(compliance["compliant"], compliance["attestations"] + [
        entry for record in compliance["artifacts"] for entry in record["attestations"]])
    typed = {item["name"]: item.get("type", "generic") for entry in template.get("artifacts", [])
             for item in entry.get("attestations", [])}
    artifacts_statuses = {}
    for record in compliance["artifacts"]:
        expected = [{"name": name, "type": typed.get(name, "generic")}
                    for name in required_for_artifact(template, record["template_name"])]
        artifacts_statuses[record["name"] or record["fingerprint"]] = {
            "status": state_of(record["compliant"], record["attestations"]), "is_compliant": record["compliant"],
            "fingerprint": record["fingerprint"], "artifact_name": record["filename"],
            "attestations_statuses": _statuses(request, org, trail, expected, record)}
    for entry in template.get("artifacts", []):
        if entry["name"] != "*" and entry["name"] not in artifacts_statuses:
            artifacts_statuses[entry["name"]] = {
                "status": MISSING, "is_compliant": False, "fingerprint": None, "artifact_name": None,
                "attestations_statuses": [_attestation_status(request, org, trail, None, item["name"],
                                                              item.get("type", "generic"), True)
                                          for item in entry.get("attestations", [])]}
    fields = {
        "events": trail_events(org, trail),
        "compliance_state": state, "is_compliant": bool(compliance["compliant"]),
        "last_modified_at": epoch(trail.updated_at),
        "compliance_status": {
            "status": state, "is_compliant": bool(compliance["compliant"]),
            "attestations_statuses": _statuses(request, org, trail, template.get("trail", []), compliance),
            "artifacts_statuses": artifacts_statuses,
        },
    }
    if kosli_cli and not trail.git_commit_info:
        # The CLI asserts sha1/author/message/timestamp on any git_commit_info object; an empty one panics.
        fields["git_commit_info"] = None
    return fields
