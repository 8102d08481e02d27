"""Judging an attestation from its evidence: parse the type's files found in the attachment, compare
with the client's summary (kosli CLI ``junit_results`` / ``snyk_results``), decide compliance.

``judge(kind, members, data, flow)`` returns a ``Judgement``; malformed files or a payload with
nothing to judge raise ``ParseError`` (→ 400 naming the problem). Custom types and overrides are judged
in ``services.py`` (they need the org's type definitions and the attestation being overridden)."""

from dataclasses import dataclass, field

from evidence.choices import SEVERITY_RANK, AttestationType, Severity, Verification
from evidence.parsers import ParseError, jira, junit, pull_request, sarif, sbom, sonar, vex


@dataclass
class Judgement:
    is_compliant: bool
    verification: str = Verification.NOT_APPLICABLE
    problems: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    components: list[dict] = field(default_factory=list)


def _files(members, suffixes):
    return [m for m in members if m.name.lower().endswith(suffixes)]


def _generic(data) -> Judgement:
    value = data.get("is_compliant", True)
    if not isinstance(value, bool):
        raise ParseError("is_compliant must be true or false")
    return Judgement(value)


def _junit(members, data) -> Judgement:
    suites = []
    parsed_files = []
    for member in _files(members, (".xml",)):
        parsed = junit.parse(member.name, member.read())
        if parsed is not None:
            suites.extend(parsed["suites"])
            parsed_files.append(parsed)
    summary = data.get("junit_results")
    if summary is not None and not isinstance(summary, list):
        raise ParseError("junit_results must be a list")
    if not suites:
        if not summary:
            raise ParseError("a junit attestation needs JUnit XML files in attachment_file (or junit_results)")
        claimed = _junit_summary_totals(summary)
        compliant = claimed["failures"] == 0 and claimed["errors"] == 0
        return Judgement(compliant, Verification.UNVERIFIED,
                         ["client summary only: no JUnit XML file was uploaded to verify it"],
                         {"totals": claimed, "suites": [], "source": "client summary"})
    totals = junit.totals(suites)
    judgement = Judgement(totals["failures"] == 0 and totals["errors"] == 0, Verification.VERIFIED, [],
                          {"totals": totals, "suites": suites, "source": "files", **junit.case_details(parsed_files)})
    if summary:
        claimed = _junit_summary_totals(summary)
        if claimed != totals:
            judgement.verification = Verification.MISMATCH
            judgement.problems.append(f"client summary {claimed} disagrees with the uploaded files {totals}")
    if not judgement.is_compliant:
        judgement.problems.append(f"{totals['failures']} failed and {totals['errors']} errored tests")
    return judgement


def _junit_summary_totals(summary) -> dict:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for index, suite in enumerate(summary):
        if not isinstance(suite, dict):
            raise ParseError(f"junit_results[{index}] must be an object")
        for key, source in (("tests", "total"), ("failures", "failures"), ("errors", "errors"),
                            ("skipped", "skipped")):
            value = suite.get(source, 0)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ParseError(f"junit_results[{index}].{source} must be an integer")
            totals[key] += value
    return totals


def _sbom(members) -> Judgement:
    documents = []
    for member in _files(members, (".json",)):
        parsed = sbom.parse(member.name, member.read())
        if parsed is not None:
            documents.append(parsed)
    if not documents:
        raise ParseError("an sbom attestation needs a CycloneDX or SPDX JSON file in attachment_file")
    components = [component for document in documents for component in document["components"]]
    results = {"documents": [{key: doc[key] for key in ("file", "format", "spec_version", "component_count")}
                             for doc in documents], "component_count": len(components)}
    return Judgement(True, Verification.VERIFIED, [], results, components)


def _blocking(findings: dict, threshold: str) -> int:
    rank = SEVERITY_RANK[threshold]
    return sum(count for severity, count in findings.items() if SEVERITY_RANK[severity] >= rank)


def _sarif(members, data, threshold) -> Judgement:
    reports = []
    for member in _files(members, (".json", ".sarif")):
        parsed = sarif.parse(member.name, member.read())
        if parsed is not None:
            reports.append(parsed)
    summary = data.get("snyk_results") or data.get("sarif_results")
    if summary is not None and not isinstance(summary, dict):
        raise ParseError("snyk_results must be an object")
    if not reports:
        if not summary:
            raise ParseError("a sarif/snyk attestation needs a SARIF 2.1 file in attachment_file (or snyk_results)")
        claimed = _snyk_summary_counts(summary)
        findings = {severity.value: 0 for severity in Severity}
        findings.update(claimed)
        blocking = _blocking(findings, threshold)
        return Judgement(blocking == 0, Verification.UNVERIFIED,
                         ["client summary only: no SARIF file was uploaded to verify it"]
                         + ([f"{blocking} findings at or above {threshold}"] if blocking else []),
                         {"findings": findings, "threshold": threshold, "source": "client summary", "listed": []})
    findings = {severity.value: 0 for severity in Severity}
    level_counts = {"high": 0, "medium": 0, "low": 0}
    listed = []
    for report in reports:
        for key, count in report["findings"].items():
            findings[key] += count
        for key, count in report["level_counts"].items():
            level_counts[key] += count
        listed.extend(report["listed"])
    listed = sarif.most_severe(listed)  # across files: the most severe findings are the ones kept
    blocking = _blocking(findings, threshold)
    judgement = Judgement(blocking == 0, Verification.VERIFIED, [],
                          {"findings": findings, "level_counts": level_counts, "threshold": threshold,
                           "tools": [tool for report in reports for tool in report["tools"]],
                           "listed": listed, "listed_omitted": sum(findings.values()) - len(listed),
                           "listed_limit": sarif.MAX_LISTED, "source": "files"})
    if summary:
        claimed = _snyk_summary_counts(summary)
        if claimed != level_counts:
            judgement.verification = Verification.MISMATCH
            judgement.problems.append(f"client summary {claimed} disagrees with the uploaded files {level_counts}")
    if blocking:
        judgement.problems.append(f"{blocking} findings at or above {threshold}")
    return judgement


def _snyk_summary_counts(summary: dict) -> dict:
    counts = {"high": 0, "medium": 0, "low": 0}
    results = summary.get("results") or []
    if not isinstance(results, list):
        raise ParseError("snyk_results.results must be a list")
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise ParseError(f"snyk_results.results[{index}] must be an object")
        for key in counts:
            value = result.get(f"{key}_count", 0)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ParseError(f"snyk_results.results[{index}].{key}_count must be an integer")
            counts[key] += value
    return counts


def _pull_request(data) -> Judgement:
    parsed = pull_request.parse(data)
    prs = parsed["pull_requests"]
    compliant = any(pr["independent_approvers"] for pr in prs)
    problems = []
    if not prs:
        problems.append("no pull request")
    elif not compliant:
        problems.append("no pull request has an approver who is not its author")
    return Judgement(compliant, Verification.NOT_APPLICABLE, problems, parsed)


def _jira(data) -> Judgement:
    """What the CLI asked Jira: nothing csm can re-check without the reporter's Jira credentials."""
    results = jira.parse(data)
    problems = jira.problems(results)
    return Judgement(not problems, Verification.NOT_APPLICABLE, problems, results)


def _sonar(data) -> Judgement:
    """The quality gate SonarQube evaluated for the scan, as the CLI fetched it."""
    results = sonar.parse(data)
    return Judgement(sonar.passed(results), Verification.NOT_APPLICABLE, sonar.problems(results), results)


def _vex(members, data) -> Judgement:
    """A VEX document is a statement, not a test: it is compliant once it parses; what it suppresses is
    decided per artifact by ``vulns.vex``. The documents come as files, or (``kosli attest custom --type vex``)
    as ``attestation_data``."""
    documents = []
    for member in _files(members, (".json",)):
        parsed = vex.parse(member.name, member.read())
        if parsed is not None:
            documents.append(parsed)
    if not documents and "attestation_data" in data:
        parsed = vex.parse_document("attestation_data", data["attestation_data"])
        if parsed is None:
            raise ParseError("attestation_data is neither an OpenVEX document (@context https://openvex.dev/ns) "
                             "nor a CycloneDX VEX (bomFormat CycloneDX)")
        documents.append(parsed)
    if not documents:
        raise ParseError("a vex attestation needs an OpenVEX or CycloneDX VEX JSON file in attachment_file")
    statements = [statement for document in documents for statement in document["statements"]]
    if len(statements) > vex.MAX_STATEMENTS:
        raise ParseError(f"more than {vex.MAX_STATEMENTS} VEX statements in one attestation (the limit)")
    counts: dict[str, int] = {}
    for statement in statements:
        counts[statement["status"]] = counts.get(statement["status"], 0) + 1
    unanalysed = sum(document.get("unanalysed", 0) for document in documents)
    problems = [f"{unanalysed} CycloneDX vulnerabilities have no analysis and state nothing about exploitability"
                ] if unanalysed else []
    results = {"documents": [{key: document[key] for key in ("file", "format", "spec_version", "document_id",
                                                             "author", "timestamp")}
                             | {"statement_count": len(document["statements"])} for document in documents],
               "statements": statements, "statement_count": len(statements), "status_counts": counts,
               "unanalysed": unanalysed}
    return Judgement(True, Verification.VERIFIED, problems, results)


def judge(kind: str, members, data: dict, flow) -> Judgement:
    if kind == AttestationType.GENERIC:
        return _generic(data)
    if kind == AttestationType.JUNIT:
        return _junit(members, data)
    if kind == AttestationType.SBOM:
        return _sbom(members)
    if kind in (AttestationType.SARIF, AttestationType.SNYK):
        return _sarif(members, data, flow.sarif_threshold)
    if kind == AttestationType.PULL_REQUEST:
        return _pull_request(data)
    if kind == AttestationType.JIRA:
        return _jira(data)
    if kind == AttestationType.SONAR:
        return _sonar(data)
    if kind == AttestationType.VEX:
        return _vex(members, data)
    raise ValueError(f"judge() does not handle {kind}")
