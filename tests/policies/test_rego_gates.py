"""Rego policies as gates of a flow's trails: attach/detach (audited, Rego only, roles, other orgs),
every decision recorded on the trail as an attestation naming the policy and input hashes with the
input and policy stored as evidence files, no loop, no duplicate; clients' ``kosli evaluate`` results
attested as evidence are recognised as client-side decisions."""

import json

import pytest

from audit.models import AuditEvent
from evidence.models import Attestation, AttestationEvidence, Trail
from policies import gates, rego, services
from policies.models import PolicyInput
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow  # noqa: F401
from tests.policies.helpers import CTX, PROVENANCE_POLICY

pytestmark = pytest.mark.django_db

# Written for `kosli evaluate trail` (the kosli CLI's own testdata policy, realistic-compliance.rego, in short).
TRAIL_POLICY = """package policy

default allow := false

attestations := input.trail.compliance_status.attestations_statuses

allow if {
    count(violations) == 0
}

violations contains msg if {
    some name in ["pull-request"]
    not attestations[name]
    msg := sprintf("required attestation %s is missing", [name])
}

violations contains msg if {
    some name in ["pull-request"]
    attestations[name].is_compliant == false
    msg := sprintf("attestation %s is not compliant", [name])
}
"""


@pytest.fixture
def admin(org, token_for, api):
    return api(token=token_for(org, Role.ADMIN))


def _gated_flow(org, admin, django_capture_on_commit_callbacks):
    make_flow(admin)
    begin_trail(admin)
    services.save_policy(CTX, org, "needs-pr", TRAIL_POLICY, policy_format="rego")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = admin.post("/api/v2/flows/acme/backend/policies", {"policy_names": ["needs-pr"]}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {"flow": "backend", "attached": ["needs-pr"], "policies": ["needs-pr"]}
    return Trail.objects.get(org=org, name="build-1"), callbacks


def _gate_requests(callbacks) -> int:
    """How many trail-gate evaluations were asked for on commit (``services.request_trail_gates``)."""
    return sum(1 for c in callbacks if c.__qualname__.startswith("request_trail_gates"))


def _decisions(trail):
    return list(Attestation.objects.filter(trail=trail, name="policy-decision.needs-pr").order_by("created_at", "id"))


def test_a_gate_records_its_decision_as_an_attestation(org, admin, django_capture_on_commit_callbacks):
    trail, callbacks = _gated_flow(org, admin, django_capture_on_commit_callbacks)
    assert _gate_requests(callbacks) == 1  # attaching evaluates the flow's latest trails, after commit
    [denied] = gates.evaluate_trail_gates(trail.pk, CTX)
    assert denied.type == "generic" and denied.is_compliant is False
    data = denied.user_data
    assert data["kind"] == "policy-decision" and data["evaluated_by"] == "csm"
    assert (data["allow"], data["violations"]) == (False, ["required attestation pull-request is missing"])
    assert data["policy_sha256"] == rego.sha256_text(TRAIL_POLICY) and data["policy_version"] == 1
    # the input and the policy are evidence files: the input file's hash is the decision's input hash
    files = {e.name: e.evidence_file.sha256 for e in AttestationEvidence.objects.filter(attestation=denied)}
    assert files == {"policy-input.json": data["input_sha256"], "needs-pr.rego": rego.sha256_text(TRAIL_POLICY)}
    document = PolicyInput.objects.get(org=org, sha256=data["input_sha256"]).document
    assert document["trail"]["name"] == "build-1"
    assert isinstance(document["trail"]["compliance_status"]["attestations_statuses"], dict)  # kosli's transform
    assert rego.evaluate(TRAIL_POLICY, [document])[0].allow is False  # re-run offline: same decision
    assert gates.evaluate_trail_gates(trail.pk, CTX) == []  # same policy, same input: not recorded twice
    # the pull request arrives: the gate evaluates again (on commit) and allows
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        attest(admin, "acme", "backend", "build-1", "generic", {"attestation_name": "pull-request",
                                                                 "is_compliant": True})
    assert _gate_requests(callbacks) == 1
    [allowed] = gates.evaluate_trail_gates(trail.pk, CTX)
    assert allowed.is_compliant is True and allowed.user_data["allow"] is True
    allowed_input = PolicyInput.objects.get(org=org, sha256=allowed.user_data["input_sha256"]).document
    assert "policy-decision.needs-pr" not in allowed_input["trail"]["compliance_status"]["attestations_statuses"]
    assert [a.user_data["allow"] for a in _decisions(trail)] == [False, True]


def test_a_decision_does_not_trigger_another(org, admin, django_capture_on_commit_callbacks):
    trail, _ = _gated_flow(org, admin, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [decision] = gates.evaluate_trail_gates(trail.pk, CTX)
    assert _gate_requests(callbacks) == 0  # recording a decision asks for no other evaluation
    assert gates.is_decision(decision)


def test_decisions_are_listed_with_client_results(org, admin, django_capture_on_commit_callbacks):
    trail, _ = _gated_flow(org, admin, django_capture_on_commit_callbacks)
    gates.evaluate_trail_gates(trail.pk, CTX)
    client_input = {"trail": {"name": "build-1"}}
    # `kosli evaluate trail ... --output json --show-input > r.json; kosli attest generic --user-data r.json`
    with django_capture_on_commit_callbacks(execute=False):
        attest(admin, "acme", "backend", "build-1", "generic", {
            "attestation_name": "opa-check", "is_compliant": False,
            "user_data": {"allow": False, "violations": ["no"], "input": client_input}})
    answer = admin.get("/api/v2/policies/acme/decisions/backend/build-1")
    assert answer.status_code == 200
    client, server = answer.json()["decisions"]
    assert client["evaluated_by"] == "client" and client["attestation_name"] == "opa-check"
    assert client["input_sha256"] == rego.input_sha256(client_input) and client["policy_sha256"] is None
    assert server["evaluated_by"] == "csm" and server["policy"] == "needs-pr"
    assert server["policy_sha256"] == rego.sha256_text(TRAIL_POLICY) and server["allow"] is False


def test_attach_rules_roles_and_other_orgs(org, other_org, admin, api, token_for, django_capture_on_commit_callbacks):
    trail, _ = _gated_flow(org, admin, django_capture_on_commit_callbacks)
    services.save_policy(CTX, org, "yaml-rules", PROVENANCE_POLICY)
    yaml_gate = admin.post("/api/v2/flows/acme/backend/policies", {"policy_names": ["yaml-rules"]}, format="json")
    assert yaml_gate.status_code == 400 and "only Rego policies gate" in yaml_gate.json()["message"]
    assert "policy_names" in yaml_gate.json()["error"]["fields"]
    member = api(token=token_for(org, Role.MEMBER))
    assert member.post("/api/v2/flows/acme/backend/policies", {"policy_names": ["needs-pr"]},
                       format="json").status_code == 403
    assert member.get("/api/v2/flows/acme/backend/policies").json()[0]["name"] == "needs-pr"
    stranger = api(token=token_for(other_org, Role.ADMIN))
    assert stranger.get(f"/api/v2/flows/{other_org.slug}/backend/policies").status_code == 404
    assert stranger.get(f"/api/v2/policies/{other_org.slug}/decisions/backend/build-1").status_code == 404
    bad = admin.post("/api/v2/flows/acme/backend/policies", {"policy_names": []}, format="json")
    assert bad.status_code == 400 and "policy_names" in bad.json()["error"]["fields"]
    detached = admin.delete("/api/v2/flows/acme/backend/policies", {"policy_names": ["needs-pr"]}, format="json")
    assert detached.json() == {"flow": "backend", "detached": ["needs-pr"], "policies": []}
    events = AuditEvent.objects.filter(org=org, action__in=["policy.attached", "policy.detached"])
    assert sorted((e.action, json.dumps(e.after or e.before, sort_keys=True)) for e in events) == [
        ("policy.attached", json.dumps({"flow": "backend", "policy": "needs-pr"}, sort_keys=True)),
        ("policy.detached", json.dumps({"flow": "backend", "policy": "needs-pr"}, sort_keys=True))]
    assert gates.evaluate_trail_gates(trail.pk, CTX) == []  # no gate any more


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_the_gate_decision_when_evidence_arrives(org, admin, celery_worker):
    """End to end with a real Celery worker: the attestation commits, the gate task runs in the worker
    (the Rego child process started from it) and the decision lands on the trail."""
    from tests.conftest import wait_for

    make_flow(admin)
    begin_trail(admin)
    services.save_policy(CTX, org, "needs-pr", TRAIL_POLICY, policy_format="rego")
    assert admin.post("/api/v2/flows/acme/backend/policies", {"policy_names": ["needs-pr"]},
                      format="json").status_code == 200
    trail = Trail.objects.get(org=org, name="build-1")
    denied = wait_for(lambda: _decisions(trail), "the decision on attach")
    assert denied[0].user_data["allow"] is False
    attest(admin, "acme", "backend", "build-1", "generic", {"attestation_name": "pull-request", "is_compliant": True})
    allowed = wait_for(lambda: len(_decisions(trail)) == 2 and _decisions(trail)[-1], "the decision on evidence")
    assert allowed.user_data["allow"] is True and allowed.is_compliant is True
