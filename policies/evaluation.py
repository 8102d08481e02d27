"""Compliance decisions: one artifact, the policies attached to its environment, what the evidence
vault knows about it, and the environment's allowlist → compliant / non-compliant / unknown, with
the decision of every rule and the reasons for incompliance.

Pure functions over plain data (no database): ``policies.services`` gathers the facts and
stores the result. Decisions use the kosli vocabulary (``rule_evaluations`` with ``satisfied``,
``ignored`` and ``resolutions``) so ``kosli assert artifact`` can print them.

- No policy attached: the artifact's compliance is ``unknown`` (``compliant`` None): nothing was
  checked, so csm cannot vouch for it (secure by default; see ``policies.standing``).
- Allowlisted (an entry that has not expired): compliant, whatever the attached policies say (and
  without a policy: authorized, compliance still unknown).
- A rule whose condition cannot be evaluated (an expression error on this artifact's data) makes the
  artifact ``unknown`` unless another rule already makes it non-compliant. Unknown is not compliant.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from csm.lib.expressions import ExpressionError
from vulns.choices import SEVERITY_RANK, VulnSeverity

from .parsing import compile_condition

COMPLIANT = "compliant"
NON_COMPLIANT = "non-compliant"
UNKNOWN = "unknown"


@dataclass
class ArtifactFacts:
    """What is known about one running artifact."""

    fingerprint: str
    name: str
    # None: no provenance (the artifact is not in any flow). Otherwise flow/trail/commit details.
    flow_name: str | None = None
    flow_tags: dict = field(default_factory=dict)
    trail_name: str | None = None
    # True / False, or None when the trail's compliance is not known.
    trail_compliant: bool | None = None
    # [{"name", "type", "compliant"}] attestations of the artifact and its trail
    attestations: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    # Vulnerabilities (``vulns.exposure.artifact_vulnerabilities``, worst first), gathered when a policy
    # needs them. ``has_sbom`` False: no SBOM is known for the artifact, so its vulnerabilities are unknown
    # (coverage unknown), never "none".
    has_sbom: bool = False
    vulnerabilities: list = field(default_factory=list)
    # When the facts were read: the grace period of a vulnerability rule is measured against it.
    now: datetime | None = None
    # The artifact's last change in the environment (it started, or scaled): ``{"snapshot": N, "at": ISO
    # time, "outside_change_window": bool}`` — gathered when a policy needs it; None when not known.
    change: dict | None = None

    @property
    def has_provenance(self) -> bool:
        return self.flow_name is not None

    def context(self) -> dict:
        flow = {"name": self.flow_name, "tags": dict(self.flow_tags)} if self.has_provenance else None
        return {"flow": flow, "artifact": {"name": self.name, "fingerprint": self.fingerprint}}


@dataclass(frozen=True)
class AppliedPolicy:
    name: str
    version: int
    document: dict
    format: str = "yaml"
    source: str = ""  # the Rego source (format "rego")
    sha256: str = ""  # of the source: names the version in every decision

    @property
    def is_rego(self) -> bool:
        return self.format == "rego"


def needs_vulnerabilities(policies) -> bool:
    """Whether deciding ``policies`` reads the artifacts' vulnerabilities: a YAML policy with an
    ``artifacts.vulnerabilities`` rule, or any Rego policy (its input carries them)."""
    return any(policy.is_rego or policy.document.get("vulnerabilities") for policy in policies)


def needs_changes(policies) -> bool:
    """Whether deciding ``policies`` reads when the artifacts changed: a YAML policy with a ``changes``
    rule, or any Rego policy (its input carries ``change``)."""
    return any(policy.is_rego or policy.document.get("changes") for policy in policies)


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def vulnerability_input(vulnerability: dict) -> dict:
    """One vulnerability as a Rego policy sees it (plain JSON: times as ISO 8601 text)."""
    suppressed = vulnerability.get("suppressed")
    ids = [*vulnerability.get("osv_ids", []), *vulnerability.get("aliases", [])]
    return {
        "id": vulnerability["group_id"],
        "aliases": sorted(set(ids) - {vulnerability["group_id"]}),
        "severity": vulnerability["severity"],
        "cvss_score": vulnerability.get("cvss_score"),
        "components": sorted(vulnerability.get("components", [])),
        "fixed": list(vulnerability.get("fixed", [])),
        "suppressed": None if not suppressed else {
            "status": suppressed.get("status"), "justification": suppressed.get("justification") or "",
            "vulnerability_id": suppressed.get("vulnerability_id") or "",
            "attestation_id": suppressed.get("attestation_id")},
        "first_matched_at": _iso(vulnerability.get("first_matched_at")),
    }


def rego_input(facts: ArtifactFacts, environment: dict) -> dict:
    """The input a Rego environment policy gets for one running artifact (documented in
    ``docs/policies.md``): the facts YAML rules see, with attestations keyed by name as kosli's
    ``evaluate`` keys ``attestations_statuses``, and the artifact's vulnerabilities (``has_sbom`` false:
    coverage unknown). Nothing in it changes from one snapshot to the next unless the artifact's
    evidence or its vulnerability matches do, so a decision (and its ``input_sha256``) stays stable."""
    return {
        "has_sbom": facts.has_sbom,
        "vulnerabilities": [vulnerability_input(v) for v in facts.vulnerabilities],
        "change": dict(facts.change) if facts.change is not None else None,
        "environment": dict(environment),
        "artifact": {"name": facts.name, "fingerprint": facts.fingerprint},
        "has_provenance": facts.has_provenance,
        "provenance": dict(facts.provenance) if facts.has_provenance else None,
        "flow": {"name": facts.flow_name, "tags": dict(facts.flow_tags)} if facts.has_provenance else None,
        "trail": {"name": facts.trail_name, "compliant": facts.trail_compliant} if facts.has_provenance else None,
        "attestations": {att["name"]: {"name": att["name"], "type": att.get("type", ""),
                                       "compliant": bool(att.get("compliant"))}
                         for att in sorted(facts.attestations, key=lambda a: a.get("name") or "")},
    }


def rego_policy_decision(policy: AppliedPolicy, result: dict | None) -> dict:
    """A Rego policy's decision in the shape of a YAML one (one rule, ``rego``), plus what an auditor
    needs to re-run it: ``policy_sha256``, ``input_sha256``, ``allow``, ``violations``, ``error``.
    No result, or an error (the policy stopped, or did not decide): ``UNKNOWN``, never compliant."""
    result = result or {"allow": None, "violations": [], "error": "the policy was not evaluated",
                        "input_sha256": None}
    allow = result["allow"]
    if allow is True:
        status, reasons = COMPLIANT, []
    elif allow is False:
        status = NON_COMPLIANT
        reasons = list(result["violations"]) or ["denied by data.policy.allow"]
    else:
        status, reasons = UNKNOWN, [result["error"] or "the policy did not decide"]
    rule = _rule("rego", {"query": "data.policy.allow", "policy_sha256": policy.sha256})
    rule.update(satisfied=allow is True, unknown=allow is None, reasons=reasons,
                resolutions=[{"type": "policy_denied"}] if allow is False else [])
    return {
        "policy_name": policy.name,
        "policy_version": policy.version,
        "policy_format": "rego",
        "policy_sha256": policy.sha256,
        "input_sha256": result.get("input_sha256"),
        "allow": allow,
        "violations": list(result["violations"]),
        "error": result["error"],
        "status": {COMPLIANT: "COMPLIANT", NON_COMPLIANT: "NON-COMPLIANT", UNKNOWN: "UNKNOWN"}[status],
        "rule_evaluations": [rule],
    }


class _ConditionError(Exception):
    def __init__(self, condition: str, error: ExpressionError):
        self.condition = condition
        self.error = error


def _holds(condition: str, context: dict) -> bool:
    try:
        return bool(compile_condition(condition).evaluate(context))
    except ExpressionError as error:
        raise _ConditionError(condition, error) from None


def _rule(kind: str, definition: dict) -> dict:
    return {"rule": {"type": kind, "definition": definition}, "ignored": False, "satisfied": False,
            "unknown": False, "resolutions": [], "reasons": []}


def _exception_decides(rule: dict, result: dict, context: dict) -> bool:
    """Whether one of the rule's ``exceptions`` decides ``result``: one holds (ignored), or one cannot be
    evaluated (unknown, never satisfied). The reason is added to ``result``."""
    try:
        for condition in rule.get("exceptions", []):
            if _holds(condition, context):
                result["ignored"] = True
                result["reasons"].append(f"exception applies: {condition}")
                return True
    except _ConditionError as problem:
        result["unknown"] = True
        result["reasons"].append(f"cannot evaluate exception {problem.condition}: {problem.error.message}")
        return True
    return False


def _boolean_rule(kind: str, rule: dict, facts: ArtifactFacts, context: dict) -> dict | None:
    if not rule.get("required"):
        return None
    result = _rule(kind, {"required": True, "exceptions": list(rule.get("exceptions", []))})
    if _exception_decides(rule, result, context):
        return result
    if kind == "provenance":
        result["satisfied"] = facts.has_provenance
        if not facts.has_provenance:
            result["resolutions"].append({"type": "missing_provenance"})
            result["reasons"].append("artifact has no provenance (it is not part of any flow)")
    else:
        if not facts.has_provenance:
            result["resolutions"].append({"type": "missing_provenance"})
            result["reasons"].append("artifact has no provenance, so no trail to be compliant in")
        elif facts.trail_compliant is None:
            result["unknown"] = True
            result["reasons"].append(f"compliance of trail {facts.trail_name!r} is not known")
        elif facts.trail_compliant:
            result["satisfied"] = True
        else:
            result["resolutions"].append({"type": "non_compliant_in_trail"})
            result["reasons"].append(f"artifact is not compliant in trail {facts.trail_name!r}")
    return result


def _type_matches(wanted: str, actual: str) -> bool:
    return wanted == "*" or wanted == actual


def _attestation_rule(rule: dict, facts: ArtifactFacts, context: dict) -> dict:
    result = _rule("attestation", {"name": rule["name"], "type": rule["type"], "if": rule.get("if")})
    label = f"'{rule['name']}' (type: {rule['type']})"
    if rule.get("if"):
        try:
            if not _holds(rule["if"], context):
                result["ignored"] = True
                result["reasons"].append(f"condition does not apply: {rule['if']}")
                return result
        except _ConditionError as problem:
            result["unknown"] = True
            result["reasons"].append(f"cannot evaluate condition {problem.condition}: {problem.error.message}")
            return result
    matching = [
        att for att in facts.attestations
        if (rule["name"] == "*" or att.get("name") == rule["name"]) and _type_matches(rule["type"], att.get("type", ""))
    ]
    if not matching:
        result["resolutions"].append({"type": "missing_attestation"})
        result["reasons"].append(f"artifact is missing required {label} attestation")
    elif any(att.get("compliant") for att in matching):
        result["satisfied"] = True
    else:
        result["resolutions"].append({"type": "non_compliant_attestation"})
        result["reasons"].append(f"attestation {label} is non-compliant")
    return result


# At most this many vulnerabilities are named in one reason (the rule lists all of them).
REASON_NAMES_UP_TO = 10


def _vulnerability_label(vulnerability: dict) -> str:
    components = ", ".join(sorted(vulnerability.get("components", []))[:3]) or "no component named"
    return f"{vulnerability['group_id']} ({vulnerability['severity']}; {components})"


def _counts_against(rule: dict, vulnerability: dict) -> bool:
    """Whether ``vulnerability`` is at or above the rule's threshold (``unknown`` is, unless the rule
    says ``unknown_severity: ignore``)."""
    severity = vulnerability["severity"]
    if severity == VulnSeverity.UNKNOWN:
        return rule.get("unknown_severity", "fail") == "fail"
    return SEVERITY_RANK.get(severity, SEVERITY_RANK[VulnSeverity.UNKNOWN]) >= SEVERITY_RANK[rule["fail_at"]]


def _grace_ends(rule: dict, vulnerability: dict) -> datetime | None:
    first = vulnerability.get("first_matched_at")
    if not rule.get("grace_seconds") or first is None:
        return None
    if isinstance(first, str):
        first = datetime.fromisoformat(first)
    return first + timedelta(seconds=rule["grace_seconds"])


def _vulnerability_rule(rule: dict, facts: ArtifactFacts, context: dict) -> dict:
    """``artifacts.vulnerabilities``: not satisfied while the artifact has an unsuppressed vulnerability at
    or above ``fail_at`` whose grace period (from when csm first matched it) is over. VEX-suppressed and
    in-grace ones are listed in the rule (``vulnerabilities``), never dropped silently."""
    definition = {key: rule.get(key) for key in ("fail_at", "grace_period", "unknown_severity", "without_sbom")}
    result = _rule("vulnerabilities", {**definition, "exceptions": list(rule.get("exceptions", []))})
    if _exception_decides(rule, result, context):
        return result
    if not facts.has_sbom:
        without = rule.get("without_sbom", "unknown")
        reason = "artifact has no SBOM: its vulnerabilities are unknown (coverage unknown)"
        if without == "ignore":
            result["ignored"] = True
            result["reasons"].append(f"{reason}; the rule ignores it (without_sbom: ignore)")
        elif without == "fail":
            result["resolutions"].append({"type": "missing_sbom"})
            result["reasons"].append(reason)
        else:
            result["unknown"] = True
            result["reasons"].append(reason)
        return result
    now = facts.now or timezone.now()
    failing, in_grace, suppressed = [], [], []
    for vulnerability in facts.vulnerabilities:
        if not _counts_against(rule, vulnerability):
            continue
        if vulnerability.get("suppressed"):
            vex = vulnerability["suppressed"]
            suppressed.append({"id": vulnerability["group_id"], "status": vex.get("status"),
                               "justification": vex.get("justification") or ""})
            continue
        ends = _grace_ends(rule, vulnerability)
        if ends is not None and ends > now:
            in_grace.append({"id": vulnerability["group_id"], "severity": vulnerability["severity"],
                             "until": ends.astimezone(UTC).isoformat()})
            continue
        failing.append(vulnerability)
    result["vulnerabilities"] = {"failing": [v["group_id"] for v in failing], "in_grace": in_grace,
                                 "suppressed": suppressed}
    if in_grace:
        result["recheck_at"] = min(item["until"] for item in in_grace)
    if not failing:
        result["satisfied"] = True
        return result
    named = ", ".join(_vulnerability_label(v) for v in failing[:REASON_NAMES_UP_TO])
    more = f" and {len(failing) - REASON_NAMES_UP_TO} more" if len(failing) > REASON_NAMES_UP_TO else ""
    noun = "vulnerability" if len(failing) == 1 else "vulnerabilities"
    result["resolutions"].append({"type": "known_vulnerability", "vulnerabilities": [v["group_id"] for v in failing]})
    result["reasons"].append(f"artifact has {len(failing)} known {noun} at or above {rule['fail_at']}: {named}{more}")
    return result


def _change_window_rule(rule: dict, facts: ArtifactFacts, context: dict) -> dict:
    """``changes.within_change_windows``: not satisfied while the artifact runs since a change (it started
    or scaled) that happened outside the environment's change windows; unknown when csm cannot tell."""
    result = _rule("change-window", {"within_change_windows": True, "exceptions": list(rule.get("exceptions", []))})
    if _exception_decides(rule, result, context):
        return result
    change = facts.change
    if change is None:
        result["unknown"] = True
        result["reasons"].append("when the artifact changed is not known")
    elif change.get("outside_change_window"):
        result["resolutions"].append({"type": "outside_change_window", "snapshot": change.get("snapshot")})
        result["reasons"].append(f"artifact changed in snapshot #{change.get('snapshot')} at {change.get('at')}, "
                                 "outside the environment's change windows")
    else:
        result["satisfied"] = True
    return result


def evaluate_policy(policy: AppliedPolicy, facts: ArtifactFacts, rego_results: dict | None = None) -> dict:
    """One policy against one artifact → ``{policy_name, policy_version, status, rule_evaluations}``.
    A Rego policy's result was computed beforehand (``policies.rego``, in a bounded child process) and
    is read from ``rego_results`` by policy name."""
    if policy.is_rego:
        return rego_policy_decision(policy, (rego_results or {}).get(policy.name))
    context = facts.context()
    doc = policy.document
    rules = [
        _boolean_rule("provenance", doc.get("provenance", {}), facts, context),
        _boolean_rule("trail-compliance", doc.get("trail_compliance", {}), facts, context),
        *(_attestation_rule(rule, facts, context) for rule in doc.get("attestations", [])),
        _vulnerability_rule(doc["vulnerabilities"], facts, context) if doc.get("vulnerabilities") else None,
        _change_window_rule(doc["changes"], facts, context) if doc.get("changes") else None,
    ]
    rules = [rule for rule in rules if rule is not None]
    failing = [rule for rule in rules if not rule["ignored"] and not rule["satisfied"] and not rule["unknown"]]
    unknown = [rule for rule in rules if rule["unknown"]]
    status = NON_COMPLIANT if failing else UNKNOWN if unknown else COMPLIANT
    return {
        "policy_name": policy.name,
        "policy_version": policy.version,
        "status": {COMPLIANT: "COMPLIANT", NON_COMPLIANT: "NON-COMPLIANT", UNKNOWN: "UNKNOWN"}[status],
        "rule_evaluations": rules,
    }


def evaluate_artifact(facts: ArtifactFacts, policies: list[AppliedPolicy], allowlist_entry: dict | None,
                      rego_results: dict | None = None) -> dict:
    """The decision for one artifact: ``{status, compliant, allowlisted, policy_decisions, reasons}``.
    ``rego_results``: ``{policy name: {allow, violations, error, input_sha256}}`` of its Rego policies."""
    decisions = [evaluate_policy(policy, facts, rego_results) for policy in policies]
    reasons = [
        f"{decision['policy_name']}: {reason}"
        for decision in decisions if decision["status"] != "COMPLIANT"
        for rule in decision["rule_evaluations"] if not rule["ignored"] and not rule["satisfied"]
        for reason in rule["reasons"]
    ]
    if not policies:
        status = UNKNOWN
        reasons = []
    elif allowlist_entry is not None:
        status = COMPLIANT
        reasons = []
    elif any(decision["status"] == "NON-COMPLIANT" for decision in decisions):
        status = NON_COMPLIANT
    elif any(decision["status"] == "UNKNOWN" for decision in decisions):
        status = UNKNOWN
    else:
        status = COMPLIANT
    # The earliest end of a vulnerability grace period the decision depends on: then it is decided again
    # (``policies.services.recheck_grace_periods``). Only present when there is one.
    recheck_at = [rule["recheck_at"] for decision in decisions for rule in decision["rule_evaluations"]
                  if rule.get("recheck_at")]
    return {
        **({"recheck_at": min(recheck_at)} if recheck_at else {}),
        "status": status,
        "compliant": (status == COMPLIANT) if policies else None,
        "allowlisted": allowlist_entry is not None,
        "allowlist_entry": allowlist_entry,
        "has_provenance": facts.has_provenance,
        "policy_decisions": decisions,
        "reasons_for_incompliance": reasons,
    }
