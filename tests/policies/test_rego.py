"""Rego policies on the server: the bounded runner, create/version/validate, environment decisions
stored with their policy and input hashes (and the input kept to re-run them), runaway policies
stopped with a clear reason, roles and other orgs."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from policies import rego, services
from policies.models import ComplianceDecision, Policy, PolicyInput, SnapshotCompliance
from tenants.choices import Role
from tests.policies.helpers import CTX, PROVENANCE_POLICY, fp, ingest, make_env, report_flow_artifact

pytestmark = pytest.mark.django_db

# A policy written for kosli's Rego input conventions (package policy, allow, violations).
NEEDS_FLOW = """package policy

default allow := false

allow if {
    input.has_provenance
    input.flow.name == "web-flow"
}

violations contains msg if {
    not input.has_provenance
    msg := sprintf("%s has no provenance", [input.artifact.name])
}
"""

RUNAWAY_TIME = """package policy

allow := count({[x, y] | some x in numbers.range(1, 5000); some y in numbers.range(1, 5000)}) > 0
"""

RUNAWAY_MEMORY = """package policy

allow := count([x | some x in numbers.range(1, 200000000)]) > 0
"""


def upload(client, name, content, filename="policy.rego", org="acme", **payload):
    body = {"name": name, "description": "", "comment": "", "type": "env", **payload}
    return client.put(f"/api/v2/policies/{org}", {
        "payload": json.dumps(body), "policy_file": SimpleUploadedFile(filename, content.encode())},
        format="multipart")


# --- the runner ------------------------------------------------------------------------------------


def test_runner_reads_allow_and_violations_like_kosli_evaluate():
    allowed, denied = rego.evaluate(NEEDS_FLOW, [
        {"has_provenance": True, "flow": {"name": "web-flow"}, "artifact": {"name": "web"}},
        {"has_provenance": False, "flow": None, "artifact": {"name": "rogue"}}])
    assert (allowed.allow, allowed.violations, allowed.error) == (True, [], None)
    assert (denied.allow, denied.violations, denied.error) == (False, ["rogue has no provenance"], None)
    threshold = "package policy\ndefault allow := false\nallow if { input.n >= data.params.min }\n"
    params = rego.evaluate(threshold, [{"n": 2}], {"min": 3})
    assert params[0].allow is False


def test_allow_that_is_not_a_boolean_or_undefined_never_allows():
    undefined, not_bool = (rego.evaluate(src, [{}])[0] for src in (
        "package policy\nallow if { input.missing }\n", 'package policy\nallow := "yes"\n'))
    assert undefined.allow is None and "did not return a result for 'data.policy.allow'" in undefined.error
    assert not_bool.allow is None and "must be true or false" in not_bool.error


def test_syntax_errors_name_the_line():
    with pytest.raises(rego.RegoSyntaxError) as bad:
        rego.check("package policy\n\nallow if {\n    x :=\n}\n")
    assert bad.value.line == 4 and "assignment" in bad.value.message
    with pytest.raises(rego.RegoSyntaxError) as wrong_package:
        rego.check("# a comment\npackage kosli\nallow := true\n")
    assert wrong_package.value.line == 2 and "package policy" in wrong_package.value.message
    with pytest.raises(rego.RegoSyntaxError, match="'allow' rule"):
        rego.check("package policy\nx := 1\n")
    rego.check(NEEDS_FLOW)


def test_a_runaway_policy_is_stopped_by_time(settings):
    settings.CSM_REGO_TIMEOUT_SECONDS = 1
    first, second = rego.evaluate(RUNAWAY_TIME, [{}, {}])
    assert first.allow is None and first.error == "the policy was stopped: it ran longer than 1 s"
    assert second.allow is None and second.error.startswith("not evaluated: the policy was stopped")


def test_a_runaway_policy_is_stopped_by_memory(settings):
    settings.CSM_REGO_MEMORY_MB = 128
    settings.CSM_REGO_TIMEOUT_SECONDS = 30
    decision = rego.evaluate(RUNAWAY_MEMORY, [{}])[0]
    assert decision.allow is None and decision.error == "the policy was stopped: it needed more than 128 MiB of memory"


def test_an_input_over_the_size_limit_is_not_evaluated(settings):
    settings.CSM_REGO_MAX_INPUT_BYTES = 1024
    decision = rego.evaluate("package policy\nallow := true\n", [{"blob": "x" * 2000}, {}])
    assert decision[0].allow is None and "larger than 1024 bytes" in decision[0].error
    assert decision[1].allow is True


# --- create, version, validate ---------------------------------------------------------------------


def test_a_rego_file_creates_a_rego_policy_versioned_like_yaml(org, owner_api):
    created = upload(owner_api, "needs-flow", NEEDS_FLOW)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["format"] == "rego" and body["latest_version"] == 1
    assert body["sha256"] == rego.sha256_text(NEEDS_FLOW)
    same = upload(owner_api, "needs-flow", NEEDS_FLOW)
    assert same.status_code == 200 and same.json()["latest_version"] == 1
    changed = upload(owner_api, "needs-flow", NEEDS_FLOW.replace("web-flow", "api-flow"), comment="api")
    assert changed.status_code == 200 and changed.json()["latest_version"] == 2
    detail = owner_api.get("/api/v2/policies/acme/needs-flow").json()
    assert [(v["version"], v["sha256"]) for v in detail["versions"]] == [
        (2, rego.sha256_text(NEEDS_FLOW.replace("web-flow", "api-flow"))), (1, rego.sha256_text(NEEDS_FLOW))]
    assert detail["versions"][1]["content"] == NEEDS_FLOW
    event = AuditEvent.objects.filter(org=org, action="policy.created").get()
    assert event.after["format"] == "rego"
    assert AuditEvent.objects.filter(org=org, action="policy.versioned").get().after["sha256"] == \
        rego.sha256_text(NEEDS_FLOW.replace("web-flow", "api-flow"))


def test_format_can_be_named_in_the_payload_and_is_kept(org, owner_api):
    assert upload(owner_api, "by-payload", NEEDS_FLOW, filename="p.txt", format="rego").json()["format"] == "rego"
    refused = upload(owner_api, "by-payload", PROVENANCE_POLICY, filename="p.yml", format="yaml")
    assert refused.status_code == 400
    assert "keeps its format" in refused.json()["message"] and "payload.format" in refused.json()["error"]["fields"]
    assert upload(owner_api, "yaml-one", PROVENANCE_POLICY, filename="p.yml").json()["format"] == "yaml"


def test_invalid_rego_is_a_400_naming_the_line(org, owner_api):
    answer = upload(owner_api, "broken", "package policy\n\nallow if {\n    x :=\n}\n")
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("Invalid policy: line 4: invalid Rego: ")
    assert answer.json()["error"]["fields"]["policy_file"][0].startswith("line 4: ")
    assert not Policy.objects.filter(org=org).exists()


def test_a_reader_cannot_create_and_another_org_sees_nothing(org, other_org, owner_api, api, token_for):
    reader = api(token=token_for(org, Role.READER))
    assert upload(reader, "needs-flow", NEEDS_FLOW).status_code == 403
    assert upload(owner_api, "needs-flow", NEEDS_FLOW).status_code == 201
    stranger = api(token=token_for(other_org, Role.ADMIN))
    assert stranger.get(f"/api/v2/policies/{other_org.slug}/needs-flow").status_code == 404


# --- environment decisions -------------------------------------------------------------------------


def _rego_env(org, capture, source=NEEDS_FLOW):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-flow", source, policy_format="rego")
    with capture(execute=False):
        services.attach_policies(CTX, org, env, ["needs-flow"])
    return env


def test_snapshot_decisions_name_policy_and_input_hashes(org, owner_api, django_capture_on_commit_callbacks):
    env = _rego_env(org, django_capture_on_commit_callbacks)
    report_flow_artifact(org, "web-flow", fp(1), name="web")
    snapshot = ingest(env, {"web:1": fp(1), "rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    compliance = SnapshotCompliance.objects.get(snapshot=snapshot)
    assert compliance.compliant is False and compliance.applied_policies == [{"name": "needs-flow", "version": 1}]
    data = owner_api.get(f"/api/v2/snapshots/acme/prod/{snapshot.index}").json()
    by_name = {a["name"]: a for a in data["artifacts"]}
    assert by_name["web:1"]["compliant"] is True
    assert by_name["rogue:1"]["compliant"] is False
    assert by_name["rogue:1"]["reasons_for_incompliance"] == ["needs-flow: rogue:1 has no provenance"]
    decision = by_name["rogue:1"]["policy_decisions"][0]
    assert decision["policy_format"] == "rego" and decision["status"] == "NON-COMPLIANT"
    assert decision["policy_sha256"] == rego.sha256_text(NEEDS_FLOW)
    assert decision["allow"] is False and decision["violations"] == ["rogue:1 has no provenance"]
    # The input is kept under its hash: fetched and re-run offline, it gives the same decision.
    stored = owner_api.get(f"/api/v2/policies/acme/inputs/{decision['input_sha256']}")
    assert stored.status_code == 200
    assert rego.input_sha256(stored.json()) == decision["input_sha256"]
    assert stored.json()["artifact"] == {"name": "rogue:1", "fingerprint": fp(2)}
    assert stored.json()["environment"] == {"name": "prod", "type": "server"}
    rerun = rego.evaluate(NEEDS_FLOW, [stored.json()])[0]
    assert (rerun.allow, rerun.violations) == (False, decision["violations"])
    web_input = by_name["web:1"]["policy_decisions"][0]["input_sha256"]
    assert PolicyInput.objects.get(org=org, sha256=web_input).document["flow"] == {"name": "web-flow", "tags": {}}


def test_decisions_are_stored_as_change(org, django_capture_on_commit_callbacks):
    env = _rego_env(org, django_capture_on_commit_callbacks)
    ingest(env, {"rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    ingest(env, {"rogue:1": fp(2), "other:1": fp(3)}, capture=django_capture_on_commit_callbacks)
    rows = ComplianceDecision.objects.filter(environment=env, fingerprint=fp(2))
    assert rows.count() == 1 and rows.get().to_index is None  # same input, same decision: one range
    assert PolicyInput.objects.filter(org=org).count() == 2


def test_evidence_arriving_changes_the_decision(org, django_capture_on_commit_callbacks):
    env = _rego_env(org, django_capture_on_commit_callbacks)
    ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        report_flow_artifact(org, "web-flow", fp(1), name="web")
    snapshot = services.reevaluate(env.pk, "evidence", CTX)
    assert snapshot is not None and SnapshotCompliance.objects.get(snapshot=snapshot).compliant is True


def test_a_runaway_environment_policy_is_unknown_with_the_reason(org, settings, django_capture_on_commit_callbacks):
    settings.CSM_REGO_TIMEOUT_SECONDS = 1
    env = _rego_env(org, django_capture_on_commit_callbacks, RUNAWAY_TIME)
    snapshot = ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    compliance = SnapshotCompliance.objects.get(snapshot=snapshot)
    assert compliance.compliant is False and compliance.unknown_count == 1
    decision = compliance.artifacts[0]
    assert decision["status"] == "unknown"
    assert decision["reasons_for_incompliance"] == ["needs-flow: the policy was stopped: it ran longer than 1 s"]


def test_assert_artifact_runs_rego_policies(org, owner_api, django_capture_on_commit_callbacks):
    _rego_env(org, django_capture_on_commit_callbacks)
    report_flow_artifact(org, "web-flow", fp(1), name="web")
    answer = owner_api.get(f"/api/v2/asserts/acme/fingerprint/{fp(1)}", {"environment_name": "prod"})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["compliant"] is True
    assert answer.json()["policy_evaluations"][0]["policy_sha256"] == rego.sha256_text(NEEDS_FLOW)


def test_inputs_of_another_org_are_404(org, other_org, owner_api, api, token_for, django_capture_on_commit_callbacks):
    env = _rego_env(org, django_capture_on_commit_callbacks)
    ingest(env, {"rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    digest = PolicyInput.objects.get(org=org).sha256
    stranger = api(token=token_for(other_org, Role.ADMIN))
    assert stranger.get(f"/api/v2/policies/{other_org.slug}/inputs/{digest}").status_code == 404
    bad = owner_api.get("/api/v2/policies/acme/inputs/nothex")
    assert bad.status_code == 400 and "sha256" in bad.json()["error"]["fields"]


def test_a_policy_cannot_read_the_workers_secrets(monkeypatch):
    """``opa.runtime()`` hands a policy its process's environment: the child gets PATH and PYTHONPATH
    only, never the worker's DATABASE_URL, SECRET_KEY or tokens."""
    monkeypatch.setenv("CSM_PROBE_SECRET", "do-not-leak")
    source = 'package policy\ndefault allow := false\nviolations contains sprintf("%v", [opa.runtime().env])\n'
    [decision] = rego.evaluate(source, [{}])
    [seen] = decision.violations
    assert "PATH" in seen and "do-not-leak" not in seen and "DATABASE_URL" not in seen and "SECRET" not in seen
