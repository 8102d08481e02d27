"""Jira evidence as ``kosli attest jira`` reports it (``cmd/kosli/attestJira.go``, ``internal/jira/jira.go``).

The CLI itself finds the issue keys (commit message, branch name, ``--jira-secondary-source``), asks Jira for
each and sends ``jira_results``: a list of ``{issue_id, issue_url, issue_exists, issue_fields?}`` where
``issue_fields`` is Jira's ``fields`` object, present only when ``--jira-issue-fields`` asked for some.
csm cannot ask the reporter's Jira itself (it holds no Jira credentials), so the list is the evidence as the
CLI saw it.

Compliant, as kosli judges it and as ``--assert`` fails the pipeline: at least one issue is referenced and
every referenced issue exists. The results keep, per issue, the key, the link (http(s) only) and a few
fields worth showing (summary, status, type, assignee, priority) as strings: results are committed to the
journal as canonical JSON, which has no floats, and Jira's ``*all`` fields have many."""

import re

from csm.lib import links
from evidence.parsers import ParseError

# internal/jira/jira.go defaultJiraIssueKeyPattern, anchored; the CLI upper-cases what it matched.
ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,9}-[0-9]{1,18}$")
MAX_ISSUES = 200
FIELD_CHARS = 500
# (shown name, path in Jira's fields object): go-jira IssueFields JSON names
SHOWN_FIELDS = (("summary", ("summary",)), ("status", ("status", "name")), ("type", ("issuetype", "name")),
                ("assignee", ("assignee", "displayName")), ("priority", ("priority", "name")))


def _field(fields: dict, path: tuple[str, ...]) -> str:
    value = fields
    for key in path:
        if not isinstance(value, dict):
            return ""
        value = value.get(key)
    return value[:FIELD_CHARS] if isinstance(value, str) else ""


def parse(data: dict) -> dict:
    """``{"issues": [{"key", "url", "exists", "summary", "status", "type", "assignee", "priority"}],
    "referenced", "found", "missing": [keys]}`` from the payload's ``jira_results``."""
    results = data.get("jira_results")
    if results is None:
        raise ParseError("a jira attestation needs jira_results (kosli attest jira sends what Jira answered)")
    if not isinstance(results, list):
        raise ParseError("jira_results must be a list")
    if len(results) > MAX_ISSUES:
        raise ParseError(f"jira_results lists {len(results)} issues; the limit is {MAX_ISSUES}")
    issues = []
    seen = set()
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise ParseError(f"jira_results[{index}] must be an object")
        key = result.get("issue_id")
        if not isinstance(key, str) or not ISSUE_KEY.match(key):
            raise ParseError(f"jira_results[{index}].issue_id must be a Jira issue key such as PROJ-42")
        exists = result.get("issue_exists")
        if not isinstance(exists, bool):
            raise ParseError(f"jira_results[{index}].issue_exists must be true or false")
        url = result.get("issue_url", "")
        if not isinstance(url, str):
            raise ParseError(f"jira_results[{index}].issue_url must be a string")
        fields = result.get("issue_fields")
        if fields is not None and not isinstance(fields, dict):
            raise ParseError(f"jira_results[{index}].issue_fields must be an object")
        if key in seen:
            continue
        seen.add(key)
        issue = {"key": key, "url": links.http_url(url)[:1000], "exists": exists}
        issue.update({name: _field(fields or {}, path) for name, path in SHOWN_FIELDS})
        issues.append(issue)
    missing = [issue["key"] for issue in issues if not issue["exists"]]
    return {"issues": issues, "referenced": len(issues), "found": len(issues) - len(missing), "missing": missing}


def problems(results: dict) -> list[str]:
    if not results["issues"]:
        return ["no Jira issue is referenced in the commit message or branch name"]
    if results["missing"]:
        return [f"Jira issue{'s' if len(results['missing']) > 1 else ''} not found: {', '.join(results['missing'])}"]
    return []
