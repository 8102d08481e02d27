"""SARIF 2.1 scan results (Snyk, bandit, CodeQL, Semgrep, Trivy...): findings by severity.

A finding's severity is, in order of preference: the rule's ``security-severity`` (CVSS-like score),
the result's ``issue_severity`` / ``severity`` property, then its SARIF ``level`` (error → high,
warning → medium, note → low, none → info). ``level_counts`` keeps the kosli CLI's own mapping
(error/warning/note → high/medium/low) so a client's ``snyk_results`` summary can be checked."""

from evidence.choices import SEVERITY_RANK, Severity
from evidence.parsers import ParseError, load_json

LEVEL_SEVERITY = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "note": Severity.LOW, "none": Severity.INFO}
NAMED = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM, "moderate": Severity.MEDIUM,
         "low": Severity.LOW, "info": Severity.INFO, "informational": Severity.INFO}
MAX_LISTED = 200


def _score_severity(value) -> str | None:
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    if score >= 9:
        return Severity.CRITICAL
    if score >= 7:
        return Severity.HIGH
    if score >= 4:
        return Severity.MEDIUM
    if score > 0:
        return Severity.LOW
    return Severity.INFO


def _severity(result: dict, rules: dict) -> str:
    rule = rules.get(result.get("ruleId")) or {}
    rule_props = rule.get("properties") if isinstance(rule.get("properties"), dict) else {}
    from_score = _score_severity(rule_props.get("security-severity"))
    if from_score:
        return from_score
    props = result.get("properties") if isinstance(result.get("properties"), dict) else {}
    for key in ("issue_severity", "severity"):
        named = NAMED.get(str(props.get(key, "")).lower())
        if named:
            return named
    level = result.get("level") or (rule.get("defaultConfiguration") or {}).get("level") or "warning"
    return LEVEL_SEVERITY.get(level, Severity.MEDIUM)


def _location(result: dict) -> str:
    for location in result.get("locations") or []:
        physical = (location or {}).get("physicalLocation") or {}
        uri = (physical.get("artifactLocation") or {}).get("uri", "")
        line = (physical.get("region") or {}).get("startLine")
        if uri:
            return f"{uri}:{line}" if line else uri
    return ""


def parse(name: str, data: bytes) -> dict | None:
    document = load_json(name, data)
    if not isinstance(document, dict) or "runs" not in document:
        return None
    version = document.get("version")
    if version != "2.1.0":
        raise ParseError(f"{name}: SARIF version must be 2.1.0, not {version!r}")
    runs = document["runs"]
    if not isinstance(runs, list):
        raise ParseError(f"{name}: runs must be a list")
    findings = {severity.value: 0 for severity in Severity}
    level_counts = {"high": 0, "medium": 0, "low": 0}
    listed: list[dict] = []
    tools = []
    for run_index, run in enumerate(runs):
        if not isinstance(run, dict):
            raise ParseError(f"{name}: runs[{run_index}] must be an object")
        driver = ((run.get("tool") or {}).get("driver") or {})
        if not driver.get("name"):
            raise ParseError(f"{name}: runs[{run_index}].tool.driver.name is missing")
        tools.append({"name": str(driver["name"]), "version": str(driver.get("version") or "")})
        rules = {rule.get("id"): rule for rule in driver.get("rules") or [] if isinstance(rule, dict)}
        results = run.get("results") or []
        if not isinstance(results, list):
            raise ParseError(f"{name}: runs[{run_index}].results must be a list")
        for index, result in enumerate(results):
            if not isinstance(result, dict):
                raise ParseError(f"{name}: runs[{run_index}].results[{index}] must be an object")
            severity = _severity(result, rules)
            findings[severity] += 1
            kosli = {"error": "high", "warning": "medium", "note": "low"}.get(result.get("level") or "warning")
            if kosli:
                level_counts[kosli] += 1
            if len(listed) < MAX_LISTED:
                message = result.get("message") if isinstance(result.get("message"), dict) else {}
                message = message.get("text", "")
                listed.append({"rule": str(result.get("ruleId") or ""), "severity": severity,
                               "message": str(message)[:500], "location": _location(result)[:500]})
    listed.sort(key=lambda item: -SEVERITY_RANK[item["severity"]])
    return {"file": name, "tools": tools, "findings": findings, "level_counts": level_counts, "listed": listed}
