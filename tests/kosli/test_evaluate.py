"""kosli ``create policy`` / ``get policy`` / ``attach-policy`` with a Rego policy, ``evaluate trail``
against csm, and its result attested back as evidence — each request built as the CLI's
``internal/requests`` builds it (``tests/kosli/cli.py``), each answer read the way the CLI reads it.

The point of the server side: a policy written for ``kosli evaluate trail`` (``package policy``,
``data.policy.allow``, ``data.policy.violations``; ``internal/evaluate/rego.go``) runs on csm unchanged,
against the same input the CLI builds (``{"trail": TransformTrail(GET trail answer)}``), and csm's
recorded decision equals the CLI's."""

import hashlib

import pytest

from evidence.models import Trail
from policies import gates, rego
from policies.models import Policy
from tenants.choices import Role
from tests.evidence.conftest import begin_trail, evidence_root, make_flow  # noqa: F401
from tests.kosli.cli import cli, cli_error
from tests.policies.helpers import CTX, make_env
from tests.policies.test_rego_gates import TRAIL_POLICY

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_token(org, token_for):
    return token_for(org, Role.ADMIN)


def create_policy(token, name, filename, content: str, description=""):
    """``cmd/kosli/createPolicy.go`` ``createPolicyOptions.run``: PUT multipart, ``payload`` field holding
    ``PolicyPayload`` {name, description, comment, type} and ``policy_file`` (newPolicyForm)."""
    payload = {"name": name, "description": description, "comment": "", "type": "env"}
    return cli(token, "PUT", "/api/v2/policies/acme",
               form=[("field", "payload", payload), ("file", "policy_file", (filename, content.encode()))])


def transform_trail(answer: dict) -> dict:
    """``internal/evaluate/transform.go`` ``TransformTrail``: every ``attestations_statuses`` list (the
    trail's and each of ``artifacts_statuses``) becomes a map keyed by ``attestation_name``."""
    def keyed(items):
        return {item["attestation_name"]: item for item in items} if isinstance(items, list) else items

    status = answer.get("compliance_status")
    if isinstance(status, dict):
        status["attestations_statuses"] = keyed(status.get("attestations_statuses"))
        for artifact in (status.get("artifacts_statuses") or {}).values():
            artifact["attestations_statuses"] = keyed(artifact.get("attestations_statuses"))
    return answer


def test_create_policy_with_a_rego_file(org, admin_token):
    """``cmd/kosli/createPolicy.go`` ``createPolicyOptions.run``: a ``.rego`` file makes a Rego policy;
    the CLI reads only the status code (201 "created", 200 "updated"). A syntax error is a 400 whose
    top-level ``message`` (what ``Client.Do`` prints) names the line."""
    created = create_policy(admin_token, "needs-pr", "policies/needs-pr.rego", TRAIL_POLICY)
    assert created.status_code == 201, created.content
    assert Policy.objects.get(org=org, name="needs-pr").format == "rego"
    assert create_policy(admin_token, "needs-pr", "needs-pr.rego", TRAIL_POLICY).status_code == 200
    broken = create_policy(admin_token, "broken", "broken.rego", "package policy\n\nallow if {\n    x :=\n}\n")
    assert cli_error(broken).startswith("Invalid policy: line 4: invalid Rego: ")


def test_get_policy_answers_what_the_cli_prints(org, admin_token):
    """``cmd/kosli/getPolicy.go`` ``printPolicyAsTable``: ``created_at`` through formattedTimestamp (a
    float64 epoch), ``consuming_envs`` asserted ``[]interface{}``, ``versions`` asserted
    ``[]interface{}`` whose LAST item is the latest, its ``policy_yaml`` asserted ``string``."""
    create_policy(admin_token, "needs-pr", "needs-pr.rego", TRAIL_POLICY)
    newer = TRAIL_POLICY.replace('"pull-request"]', '"pull-request", "unit-tests"]')
    create_policy(admin_token, "needs-pr", "needs-pr.rego", newer)
    make_env(org)
    attached = cli(admin_token, "POST", "/api/v2/environments/acme/prod/policies", {"policy_names": ["needs-pr"]})
    assert attached.status_code == 200  # ``cmd/kosli/attachPolicy.go``: AttachPolicyPayload {policy_names}
    answer = cli(admin_token, "GET", "/api/v2/policies/acme/needs-pr")
    assert answer.status_code == 200
    policy = answer.json()
    assert isinstance(policy["created_at"], float)
    assert policy["consuming_envs"] == ["prod"]
    assert isinstance(policy["versions"], list) and len(policy["versions"]) == 2
    assert policy["versions"][-1]["policy_yaml"] == newer
    assert policy["versions"][-1]["sha256"] == hashlib.sha256(newer.encode()).hexdigest()
    assert isinstance(policy["name"], str) and isinstance(policy["description"], str)


def test_evaluate_trail_input_is_what_csm_gates_on(org, admin_token, api, django_capture_on_commit_callbacks):
    """``cmd/kosli/evaluateHelpers.go`` ``fetchAndEnrichTrail``: GET ``/api/v2/trails/{org}/{flow}/{trail}``
    (no body), ``TransformTrail``, then one ``GET /api/v2/attestations/{org}?attestation_id=`` per string
    ``attestation_id`` (csm answers null ids: no further request); ``evaluateAndPrintResult`` wraps it as
    ``{"trail": ...}``. The same policy on that input (the CLI's verdict) and csm's gate decision agree,
    and csm's recorded input is the CLI's input."""
    admin = api(token=admin_token)
    make_flow(admin)
    begin_trail(admin)
    create_policy(admin_token, "needs-pr", "needs-pr.rego", TRAIL_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        assert cli(admin_token, "POST", "/api/v2/flows/acme/backend/policies",
                   {"policy_names": ["needs-pr"]}).status_code == 200
    answer = cli(admin_token, "GET", "/api/v2/trails/acme/backend/build-1")
    assert answer.status_code == 200
    trail = answer.json()
    statuses = trail["compliance_status"]["attestations_statuses"]
    assert isinstance(statuses, list)
    assert all(s["attestation_id"] is None for s in statuses)  # CollectAttestationIDs: nothing to fetch
    client_input = {"trail": transform_trail(trail)}
    client_verdict = rego.evaluate(TRAIL_POLICY, [client_input])[0]
    missing = ["required attestation pull-request is missing"]
    assert (client_verdict.allow, client_verdict.violations) == (False, missing)

    [recorded] = gates.evaluate_trail_gates(Trail.objects.get(org=org, name="build-1").pk, CTX)
    assert (recorded.user_data["allow"], recorded.user_data["violations"]) == (False, client_verdict.violations)
    assert recorded.user_data["input_sha256"] == rego.input_sha256(client_input)
    stored = cli(admin_token, "GET", f"/api/v2/policies/acme/inputs/{recorded.user_data['input_sha256']}")
    assert stored.status_code == 200 and stored.json() == client_input


def test_evaluate_trail_output_attested_as_evidence(org, admin_token, api, django_capture_on_commit_callbacks):
    """``kosli evaluate trail --output json --show-input`` prints ``{"allow", "violations", "input"}``
    (``evaluateAndPrintResult``; this CLI has no ``--attest``); ``kosli attest generic --user-data
    result.json --compliant=false`` (``cmd/kosli/attestGeneric.go``: multipart ``data_json`` holding
    GenericAttestationPayload) records it. csm accepts it and lists it as a client-side decision with
    the hash of the input it was taken on."""
    admin = api(token=admin_token)
    make_flow(admin)
    begin_trail(admin)
    trail = cli(admin_token, "GET", "/api/v2/trails/acme/backend/build-1").json()
    result = {"allow": False, "violations": ["required attestation pull-request is missing"],
              "input": {"trail": transform_trail(trail)}}
    payload = {"attestation_name": "opa-gate", "user_data": result, "is_compliant": False}
    with django_capture_on_commit_callbacks(execute=False):
        attested = cli(admin_token, "POST", "/api/v2/attestations/acme/backend/trail/build-1/generic",
                       form=[("field", "data_json", payload)])
    assert attested.status_code in (200, 201), attested.content
    decisions = cli(admin_token, "GET", "/api/v2/policies/acme/decisions/backend/build-1").json()["decisions"]
    [client] = decisions
    assert client["evaluated_by"] == "client" and client["allow"] is False
    assert client["violations"] == result["violations"]
    assert client["input_sha256"] == rego.input_sha256(result["input"])
