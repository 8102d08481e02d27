"""SARIF 2.1 scan results (Snyk, bandit, CodeQL, Semgrep, Trivy...): findings by severity.

A finding's severity is, in order of preference: the rule's ``security-severity`` (CVSS-like score),
the result's ``issue_severity`` / ``severity`` property, then its SARIF ``level`` (error → high,
warning → medium, note → low, none → info). ``level_counts`` keeps the kosli CLI's own mapping
(error/warning/note → high/medium/low) so a client's ``snyk_results`` summary can be checked.

Each finding is listed for the attestation page (rule id, rule name and description, severity, SARIF
level, message, file:line), bounded: the ``MAX_LISTED`` most severe findings (document order among
equals), messages and descriptions cut at ``MAX_TEXT`` characters."""

from evidence.choices import SEVERITY_RANK, Severity
from evidence.parsers import ParseError, load_json

LEVEL_SEVERITY = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "note": Severity.LOW, "none": Severity.INFO}
NAMED = {"critical": Severity.CRITICAL, "high": Severity.HIGH, "medium": Severity.MEDIUM, "moderate": Severity.MEDIUM,
         "low": Severity.LOW, "info": Severity.INFO, "informational": Severity.INFO}
MAX_LISTED = 1000
MAX_TEXT = 2000


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


def _obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def _rule(result: dict, rules: dict) -> dict:
    rule_id = result.get("ruleId")
    return _obj(rules.get(rule_id)) if isinstance(rule_id, str) else {}


def _severity(result: dict, rules: dict) -> str:
    rule = _rule(result, rules)
    rule_props = rule.get("properties") if isinstance(rule.get("properties"), dict) else {}
    from_score = _score_severity(rule_props.get("security-severity"))
    if from_score:
        return from_score
    props = result.get("properties") if isinstance(result.get("properties"), dict) else {}
    for key in ("issue_severity", "severity"):
        named = NAMED.get(str(props.get(key, "")).lower())
        if named:
            return named
    level = result.get("level") or _obj(rule.get("defaultConfiguration")).get("level") or "warning"
    return LEVEL_SEVERITY.get(level if isinstance(level, str) else "", Severity.MEDIUM)


def _location(result: dict) -> str:
    locations = result.get("locations")
    for location in locations if isinstance(locations, list) else []:
        physical = _obj(_obj(location).get("physicalLocation"))
        uri = _obj(physical.get("artifactLocation")).get("uri", "")
        line = _obj(physical.get("region")).get("startLine")
        if uri:
            return f"{uri}:{line}" if line else str(uri)
    return ""


def _text(value) -> str:
    """``message`` / ``shortDescription``-shaped objects (``{"text": ...}``) or plain strings."""
    if isinstance(value, dict):
        value = value.get("text", "")
    return str(value or "")[:MAX_TEXT]


def most_severe(listed: list[dict]) -> list[dict]:
    """The ``MAX_LISTED`` most severe of ``listed``, most severe first (a stable sort keeps document order)."""
    return sorted(listed, key=lambda item: -SEVERITY_RANK[item["severity"]])[:MAX_LISTED]


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
        declared = driver.get("rules") if isinstance(driver.get("rules"), list) else []
        rules = {rule["id"]: rule for rule in declared if isinstance(rule, dict) and isinstance(rule.get("id"), str)}
        results = run.get("results") or []
        if not isinstance(results, list):
            raise ParseError(f"{name}: runs[{run_index}].results must be a list")
        for index, result in enumerate(results):
            if not isinstance(result, dict):
                raise ParseError(f"{name}: runs[{run_index}].results[{index}] must be an object")
            severity = _severity(result, rules)
            findings[severity] += 1
            kosli = {"error": "high", "warning": "medium", "note": "low"}.get(str(result.get("level") or "warning"))
            if kosli:
                level_counts[kosli] += 1
            rule = _rule(result, rules)
            level = result.get("level") or _obj(rule.get("defaultConfiguration")).get("level") or "warning"
            listed.append({"rule": str(result.get("ruleId") or "")[:200],
                           "rule_name": str(rule.get("name") or "")[:200],
                           "rule_description": _text(rule.get("shortDescription") or rule.get("fullDescription")),
                           "severity": severity, "level": str(level)[:20], "message": _text(result.get("message")),
                           "location": _location(result)[:500], "tool": str(driver["name"])[:200]})
            if len(listed) >= 2 * MAX_LISTED:  # bounded memory whatever the file holds
                listed = most_severe(listed)
    listed = most_severe(listed)
    return {"file": name, "tools": tools, "findings": findings, "level_counts": level_counts, "listed": listed}
