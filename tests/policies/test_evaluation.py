"""Compliance decisions for each rule, its exceptions and conditions, the allowlist, and hostile input."""

from policies.evaluation import AppliedPolicy, ArtifactFacts, evaluate_artifact
from policies.parsing import parse_policy

FP = "a" * 64


def policy(body: str, name="prod-policy") -> AppliedPolicy:
    return AppliedPolicy(name, 1, parse_policy("_schema: https://kosli.com/schemas/policy/environment/v1\n" + body))


def facts(**extra) -> ArtifactFacts:
    return ArtifactFacts(fingerprint=FP, name=extra.pop("name", "web:1.0"), **extra)


def with_provenance(**extra) -> ArtifactFacts:
    base = {"flow_name": "web", "flow_tags": {"risk-level": "high"}, "trail_name": "abc123", "trail_compliant": True}
    base.update(extra)
    return facts(**base)


PROVENANCE = "artifacts:\n  provenance:\n    required: true\n"


def test_no_policy_means_unknown_never_compliant():
    decision = evaluate_artifact(facts(), [], None)
    assert decision["status"] == "unknown" and decision["compliant"] is None and decision["policy_decisions"] == []
    allowlisted = evaluate_artifact(facts(), [], {"id": 1, "reason": "vendor", "expires_at": None})
    assert allowlisted["status"] == "unknown" and allowlisted["compliant"] is None and allowlisted["allowlisted"]


def test_provenance_required():
    missing = evaluate_artifact(facts(), [policy(PROVENANCE)], None)
    assert missing["status"] == "non-compliant"
    assert missing["reasons_for_incompliance"] == [
        "prod-policy: artifact has no provenance (it is not part of any flow)"]
    rule = missing["policy_decisions"][0]["rule_evaluations"][0]
    assert rule["rule"]["type"] == "provenance" and rule["resolutions"] == [{"type": "missing_provenance"}]
    assert evaluate_artifact(with_provenance(), [policy(PROVENANCE)], None)["compliant"] is True


def test_provenance_exception_waives_rule():
    body = PROVENANCE + '    exceptions:\n      - if: ${{ matches(artifact.name, "^datadog:") }}\n'
    decision = evaluate_artifact(facts(name="datadog:7"), [policy(body)], None)
    assert decision["status"] == "compliant"
    assert decision["policy_decisions"][0]["rule_evaluations"][0]["ignored"] is True
    assert evaluate_artifact(facts(name="web:1"), [policy(body)], None)["status"] == "non-compliant"


def test_trail_compliance():
    body = "artifacts:\n  trail-compliance:\n    required: true\n"
    assert evaluate_artifact(with_provenance(), [policy(body)], None)["status"] == "compliant"
    bad = evaluate_artifact(with_provenance(trail_compliant=False), [policy(body)], None)
    assert bad["status"] == "non-compliant" and "not compliant in trail 'abc123'" in bad["reasons_for_incompliance"][0]
    unknown = evaluate_artifact(with_provenance(trail_compliant=None), [policy(body)], None)
    assert unknown["status"] == "unknown" and unknown["compliant"] is False
    assert evaluate_artifact(facts(), [policy(body)], None)["status"] == "non-compliant"


def test_attestation_rules_by_name_type_and_condition():
    body = ("artifacts:\n  attestations:\n    - name: scan\n      type: snyk\n"
            "    - name: pr\n      type: pull_request\n      if: ${{ flow.tags.risk-level == \"high\" }}\n"
            "    - type: custom:coverage\n")
    good = [{"name": "scan", "type": "snyk", "compliant": True},
            {"name": "pr", "type": "pull_request", "compliant": True},
            {"name": "cov", "type": "custom:coverage", "compliant": True}]
    assert evaluate_artifact(with_provenance(attestations=good), [policy(body)], None)["status"] == "compliant"
    missing_pr = evaluate_artifact(with_provenance(attestations=[good[0], good[2]]), [policy(body)], None)
    assert missing_pr["reasons_for_incompliance"] == [
        "prod-policy: artifact is missing required 'pr' (type: pull_request) attestation"]
    low_risk = with_provenance(flow_tags={"risk-level": "low"}, attestations=[good[0], good[2]])
    decision = evaluate_artifact(low_risk, [policy(body)], None)
    assert decision["status"] == "compliant"
    assert decision["policy_decisions"][0]["rule_evaluations"][1]["ignored"] is True
    failing = [{"name": "scan", "type": "snyk", "compliant": False}, good[1], good[2]]
    bad = evaluate_artifact(with_provenance(attestations=failing), [policy(body)], None)
    assert bad["reasons_for_incompliance"] == ["prod-policy: attestation 'scan' (type: snyk) is non-compliant"]
    assert bad["policy_decisions"][0]["rule_evaluations"][0]["resolutions"] == [{"type": "non_compliant_attestation"}]


def test_wildcard_name_and_type():
    any_junit = "artifacts:\n  attestations:\n    - name: '*'\n      type: junit\n"
    named_any_type = "artifacts:\n  attestations:\n    - name: tests\n      type: '*'\n"
    atts = [{"name": "unit", "type": "junit", "compliant": True}]
    assert evaluate_artifact(with_provenance(attestations=atts), [policy(any_junit)], None)["compliant"]
    assert not evaluate_artifact(with_provenance(attestations=atts), [policy(named_any_type)], None)["compliant"]
    atts.append({"name": "tests", "type": "generic", "compliant": True})
    assert evaluate_artifact(with_provenance(attestations=atts), [policy(named_any_type)], None)["compliant"]


def test_every_policy_must_pass():
    decision = evaluate_artifact(with_provenance(), [policy(PROVENANCE, "a"), policy(
        "artifacts:\n  attestations:\n    - type: junit\n", "b")], None)
    assert decision["status"] == "non-compliant"
    assert [d["status"] for d in decision["policy_decisions"]] == ["COMPLIANT", "NON-COMPLIANT"]


def test_allowlisted_artifact_is_compliant():
    decision = evaluate_artifact(facts(), [policy(PROVENANCE)], {"id": 1, "reason": "vendor", "expires_at": None})
    assert decision["status"] == "compliant" and decision["allowlisted"] is True
    assert decision["reasons_for_incompliance"] == []


def test_expression_errors_make_the_artifact_unknown_not_compliant():
    # comparing a string tag with a number cannot be evaluated: unknown, never silently compliant
    body = "artifacts:\n  attestations:\n    - type: junit\n      if: ${{ flow.tags.risk-level > 3 }}\n"
    decision = evaluate_artifact(with_provenance(), [policy(body)], None)
    assert decision["status"] == "unknown"
    assert "cannot evaluate condition" in decision["policy_decisions"][0]["rule_evaluations"][0]["reasons"][0]


def test_hostile_names_and_values_are_plain_data():
    body = ("artifacts:\n  provenance:\n    required: true\n    exceptions:\n"
            "      - if: ${{ artifact.name == \"x\" or matches(artifact.name, \"(a+)+$\") }}\n")
    hostile = facts(name="a" * 50_000 + "!")
    assert evaluate_artifact(hostile, [policy(body)], None)["status"] == "non-compliant"
    tags = {"__class__": "x", "risk-level": {"nested": ["deep"] * 1000}}
    decision = evaluate_artifact(with_provenance(flow_tags=tags), [policy(
        "artifacts:\n  attestations:\n    - type: junit\n      if: ${{ flow.tags.risk-level == \"high\" }}\n")], None)
    assert decision["status"] == "compliant"  # condition false on odd data: the rule is ignored
