"""SonarQube / SonarQube Cloud evidence as ``kosli attest sonar`` reports it (``cmd/kosli/attestSonar.go``,
``internal/sonar/sonar.go`` ``SonarResults``).

The CLI reads the scan from SonarQube (the scanner's ``report-task.txt``, the ``api/ce/task`` analysis, then
``api/qualitygates/project_status``) and sends ``sonar_results``: ``serverUrl``, ``taskId``, ``status`` (the
analysis task's), ``analysedAt``, ``revision``, ``project {key, name, url}``, ``branch {name, type}`` or
``pullRequest``, and ``qualityGate {status, conditions: [{metric, errorThreshold, operator, value,
status}]}`` (SonarQube's ``projectStatus`` with ``metricKey`` → ``metric``, ``comparator`` → ``operator``,
``actualValue`` → ``value``).

Compliant when the quality gate passed: ``qualityGate.status`` is ``OK``. ``ERROR`` (failed), ``WARN``
(older SonarQube's warning), ``NONE`` (no gate evaluated) and a missing gate are non-compliant. csm holds no
Sonar token, so the results are the evidence as the CLI fetched them. Everything kept is a string (results
go to the journal as canonical JSON)."""

from csm.lib import links
from evidence.parsers import ParseError

PASSED = "OK"
MAX_CONDITIONS = 200
CHARS = 300


def _string(value, field: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ParseError(f"{field} must be {'a non-empty' if required else 'a'} string")
    return value[:CHARS]


def _object(value, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"{field} must be an object")
    return value


def parse(data: dict) -> dict:
    """The results shown and judged: ``{"server_url", "task_id", "task_status", "analysed_at", "revision",
    "project": {"key", "name", "url"}, "branch": {"name", "type"}, "pull_request", "quality_gate":
    {"status", "conditions": [...]} or None}``."""
    results = data.get("sonar_results")
    if results is None:
        raise ParseError("a sonar attestation needs sonar_results (kosli attest sonar sends what SonarQube "
                         "answered)")
    if not isinstance(results, dict):
        raise ParseError("sonar_results must be an object")
    project = _object(results.get("project"), "sonar_results.project")
    branch = _object(results.get("branch"), "sonar_results.branch")
    out = {
        "server_url": links.http_url(_string(results.get("serverUrl"), "sonar_results.serverUrl")),
        "task_id": _string(results.get("taskId"), "sonar_results.taskId"),
        "task_status": _string(results.get("status"), "sonar_results.status"),
        "analysed_at": _string(results.get("analysedAt"), "sonar_results.analysedAt"),
        "revision": _string(results.get("revision"), "sonar_results.revision"),
        "project": {"key": _string(project.get("key"), "sonar_results.project.key", required=True),
                    "name": _string(project.get("name"), "sonar_results.project.name"),
                    "url": links.http_url(_string(project.get("url"), "sonar_results.project.url"))},
        "branch": {"name": _string(branch.get("name"), "sonar_results.branch.name"),
                   "type": _string(branch.get("type"), "sonar_results.branch.type")},
        "pull_request": _string(results.get("pullRequest"), "sonar_results.pullRequest"),
        "quality_gate": None,
    }
    gate = results.get("qualityGate")
    if gate is not None:
        gate = _object(gate, "sonar_results.qualityGate")
        conditions = gate.get("conditions") or []
        if not isinstance(conditions, list):
            raise ParseError("sonar_results.qualityGate.conditions must be a list")
        if len(conditions) > MAX_CONDITIONS:
            raise ParseError(f"sonar_results.qualityGate lists {len(conditions)} conditions; the limit is "
                             f"{MAX_CONDITIONS}")
        listed = []
        for index, condition in enumerate(conditions):
            where = f"sonar_results.qualityGate.conditions[{index}]"
            condition = _object(condition, where)
            listed.append({"metric": _string(condition.get("metric"), f"{where}.metric", required=True),
                           "operator": _string(condition.get("operator"), f"{where}.operator"),
                           "error_threshold": _string(condition.get("errorThreshold"), f"{where}.errorThreshold"),
                           "value": _string(condition.get("value"), f"{where}.value"),
                           "status": _string(condition.get("status"), f"{where}.status").upper()})
        out["quality_gate"] = {"status": _string(gate.get("status"), "sonar_results.qualityGate.status",
                                                 required=True).upper(),
                               "conditions": listed}
    return out


def passed(results: dict) -> bool:
    return results["quality_gate"] is not None and results["quality_gate"]["status"] == PASSED


def problems(results: dict) -> list[str]:
    gate = results["quality_gate"]
    if gate is None:
        return ["the SonarQube analysis has no quality gate result"]
    if gate["status"] == PASSED:
        return []
    failing = [c["metric"] for c in gate["conditions"] if c["status"] not in ("OK", "")]
    detail = f": {', '.join(failing)}" if failing else ""
    return [f"SonarQube quality gate status {gate['status']} for project {results['project']['key']}{detail}"]
