"""An environment carrying a Rego policy: its decisions raise the environment-compliance alerts as YAML
decisions do, and the environment report lists them with the policy version's hash and the input's
hash (the done-when of issue 15)."""

import json

import pytest

from alerts import services as alert_services
from alerts.models import Delivery
from policies import rego, services
from policies.models import ComplianceDecision
from tests.policies.helpers import CTX, fp, ingest, make_env, report_flow_artifact
from tests.policies.test_rego import NEEDS_FLOW
from tests.reports.conftest import assert_contains, generate, pdf_text  # noqa: F401
from tests.reports.test_kinds import report_range

pytestmark = pytest.mark.django_db


def _rego_env(org, capture):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-flow", NEEDS_FLOW, policy_format="rego")
    with capture(execute=False):
        services.attach_policies(CTX, org, env, ["needs-flow"])
    return env


def test_rego_decisions_raise_environment_alerts(org, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    env = _rego_env(org, capture)
    alert_services.create_action(CTX, org, "env", "webhook", url="http://127.0.0.1:9/",
                                 triggers=["ON_COMPLIANT_ENV", "ON_NON_COMPLIANT_ENV"])
    with capture(execute=False):
        ingest(env, {"rogue:1": fp(2)})
    assert list(Delivery.objects.values_list("event_type", flat=True)) == ["ON_NON_COMPLIANT_ENV"]
    body = json.loads(Delivery.objects.get().body)
    assert "prod became non-compliant (1 artifact(s) not compliant)" in body["description"]
    with capture(execute=False):
        report_flow_artifact(org, "web-flow", fp(1), name="web")
        ingest(env, {"web:1": fp(1)})
    assert list(Delivery.objects.order_by("id").values_list("event_type", flat=True)) == [
        "ON_NON_COMPLIANT_ENV", "ON_COMPLIANT_ENV"]


def test_environment_report_lists_rego_decisions_with_hashes(org, owner, generate,  # noqa: F811 (the fixture)
                                                             django_capture_on_commit_callbacks, settings, tmp_path):
    settings.CSM_EVIDENCE_ROOT = tmp_path / "evidence"
    env = _rego_env(org, django_capture_on_commit_callbacks)
    ingest(env, {"rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    decision = ComplianceDecision.objects.get(environment=env, fingerprint=fp(2)).decision["policy_decisions"][0]
    report = generate(org, "environment", user=owner, environment="prod", **report_range())
    assert report.status == "done", report.error
    data = json.loads(bytes(report.output.data_json))
    [section] = [s for s in data["sections"] if s["id"] == "policy-decisions"]
    [row] = section["rows"]
    policy_hash = rego.sha256_text(NEEDS_FLOW)
    assert row[2:] == ["rogue:1", "needs-flow v1 (rego)", policy_hash[:12], decision["input_sha256"][:12],
                       "non-compliant", "rogue:1 has no provenance"]
    assert_contains(pdf_text(report), "Policy decisions", "needs-flow v1 (rego)", policy_hash[:12])
