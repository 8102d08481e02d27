"""kosli CLI conformance: ``kosli create policy``, ``kosli get policy``, ``kosli list policies``, ``kosli attach
policy`` and ``kosli detach policy``.

Requests as ``kosliClient.Do`` builds them (``internal/requests/requests.go``): ``create policy`` is a
multipart body (``createMultipartRequestBody``: the field ``payload`` holding Go's JSON of ``PolicyPayload``,
then the file ``policy_file``); attach / detach send ``AttachPolicyPayload`` as JSON, once per ``-e``
environment; reads are GETs without a body. The answers are read the way the printers read them."""

import pytest

from audit.models import AuditEvent
from policies.models import Policy
from tenants.choices import Role
from tests.kosli.cli import cli, cli_error
from tests.policies.helpers import POLICY_HEAD, make_env

pytestmark = pytest.mark.django_db

POLICY_V1 = POLICY_HEAD + "artifacts:\n  provenance:\n    required: true\n"
POLICY_V2 = POLICY_V1 + "  trail-compliance:\n    required: true\n"


def create_policy(token, name: str, content: str, description="", comment="", policy_type="env"):
    """``cmd/kosli/createPolicy.go`` ``run`` / ``newPolicyForm``: PUT /api/v2/policies/{org}, multipart
    ``payload`` = ``PolicyPayload{name, description, comment, type}`` (no omitempty: all four always sent;
    ``--type`` defaults to ``env``) and ``policy_file`` = the file."""
    payload = {"name": name, "description": description, "comment": comment, "type": policy_type}
    return cli(token, "PUT", "/api/v2/policies/acme",
               form=[("field", "payload", payload), ("file", "policy_file", ("policies/prod.yml", content.encode()))])


@pytest.fixture
def admin(org, token_for):
    return token_for(org, Role.ADMIN)


def test_create_policy(org, admin):
    """createPolicy.go: 201 says "created", 200 says "updated" (the CLI reads ``res.Resp.StatusCode``); a
    second upload is a new version. The refusal of a bad file is a 400 naming ``policy_file``."""
    created = create_policy(admin, "prod-rules", POLICY_V1, description="what prod needs", comment="first")
    assert created.status_code == 201, created.content
    updated = create_policy(admin, "prod-rules", POLICY_V2, description="what prod needs", comment="add trails")
    assert updated.status_code == 200, updated.content
    policy = Policy.objects.get(org=org, name="prod-rules")
    assert policy.versions.count() == 2 and policy.description == "what prod needs"
    assert AuditEvent.objects.filter(org=org, action__in=["policy.created", "policy.versioned"]).count() == 2

    bad = create_policy(admin, "broken", "_schema: nonsense\nartifacts: 3\n")
    assert bad.status_code == 400 and "policy_file" in bad.json()["error"]["fields"] and cli_error(bad)


def read_like_print_policy_as_table(policy: dict) -> dict:
    """``cmd/kosli/getPolicy.go`` ``printPolicyAsTable``: ``created_at`` through formattedTimestamp (number,
    numeric string or null), ``consuming_envs`` and ``versions`` asserted ``[]interface{}``, the LAST
    version's ``policy_yaml`` asserted string (printed as "Policy content")."""
    assert policy["created_at"] is None or isinstance(policy["created_at"], (int, float, str))
    if isinstance(policy["created_at"], str):
        float(policy["created_at"])  # strconv.ParseFloat, or the CLI fails
    assert isinstance(policy["consuming_envs"], list) and isinstance(policy["versions"], list)
    latest = policy["versions"][-1]
    assert isinstance(latest["policy_yaml"], str)
    return {"name": policy["name"], "description": policy["description"], "versions": len(policy["versions"]),
            "envs": policy["consuming_envs"], "content": latest["policy_yaml"]}


def test_get_policy(org, admin, token_for):
    """``cmd/kosli/getPolicy.go`` ``run``: GET /api/v2/policies/{org}/{name}; the content printed is the
    latest version's."""
    make_env(org, "prod")
    create_policy(admin, "prod-rules", POLICY_V1, description="what prod needs")
    create_policy(admin, "prod-rules", POLICY_V2, description="what prod needs")
    cli(admin, "POST", "/api/v2/environments/acme/prod/policies", {"policy_names": ["prod-rules"]})
    answer = cli(token_for(org, Role.READER), "GET", "/api/v2/policies/acme/prod-rules")
    assert answer.status_code == 200
    assert read_like_print_policy_as_table(answer.json()) == {
        "name": "prod-rules", "description": "what prod needs", "versions": 2, "envs": ["prod"], "content": POLICY_V2}
    missing = cli(admin, "GET", "/api/v2/policies/acme/nope")
    assert missing.status_code == 404 and cli_error(missing)


def test_list_policies(org, admin, token_for):
    """``cmd/kosli/listPolicies.go`` ``printPolicyListAsTable``: a JSON array; per policy ``created_at``
    (formattedTimestamp), ``versions`` and ``consuming_envs`` asserted ``[]interface{}``."""
    create_policy(admin, "a-rules", POLICY_V1)
    create_policy(admin, "b-rules", POLICY_V1)
    create_policy(admin, "b-rules", POLICY_V2)
    answer = cli(token_for(org, Role.READER), "GET", "/api/v2/policies/acme")
    assert answer.status_code == 200
    rows = [(p["name"], len(p["versions"]), p["consuming_envs"]) for p in answer.json()]
    for policy in answer.json():
        assert policy["created_at"] is None or isinstance(policy["created_at"], (int, float))
    assert rows == [("a-rules", 1, []), ("b-rules", 2, [])]


def test_attach_and_detach_policy(org, admin):
    """``cmd/kosli/attachPolicy.go`` / ``detachPolicy.go`` ``run``: for each ``-e`` environment, POST (attach)
    or DELETE (detach) /api/v2/environments/{org}/{env}/policies with ``{"policy_names": [name]}``. The CLI
    reads nothing back; 200/201 is success."""
    for name in ("prod", "staging"):
        make_env(org, name)
    create_policy(admin, "prod-rules", POLICY_V1)
    for env in ("prod", "staging"):
        attached = cli(admin, "POST", f"/api/v2/environments/acme/{env}/policies", {"policy_names": ["prod-rules"]})
        assert attached.status_code in (200, 201), attached.content
    assert sorted(cli(admin, "GET", "/api/v2/policies/acme/prod-rules").json()["consuming_envs"]) == ["prod", "staging"]
    detached = cli(admin, "DELETE", "/api/v2/environments/acme/staging/policies", {"policy_names": ["prod-rules"]})
    assert detached.status_code in (200, 201), detached.content
    assert cli(admin, "GET", "/api/v2/policies/acme/prod-rules").json()["consuming_envs"] == ["prod"]
    assert AuditEvent.objects.filter(org=org, action="policy.attached").count() == 2
    assert AuditEvent.objects.filter(org=org, action="policy.detached").count() == 1

    unknown = cli(admin, "POST", "/api/v2/environments/acme/prod/policies", {"policy_names": ["nope"]})
    assert unknown.status_code in (400, 404) and "nope" in cli_error(unknown)


def test_policy_commands_roles_and_tenancy(org, other_org, admin, token_for):
    """A member may not create or attach policies (403); another org's policy and environment are 404s."""
    member = token_for(org, Role.MEMBER)
    assert create_policy(member, "mine", POLICY_V1).status_code == 403
    make_env(org, "prod")
    create_policy(admin, "prod-rules", POLICY_V1)
    assert cli(member, "POST", "/api/v2/environments/acme/prod/policies",
               {"policy_names": ["prod-rules"]}).status_code == 403
    other = token_for(other_org, Role.ADMIN)
    assert cli(other, "GET", "/api/v2/policies/acme/prod-rules").status_code == 404
    assert cli(admin, "GET", "/api/v2/policies/globex").status_code == 404
    make_env(other_org, "prod")
    assert cli(admin, "POST", "/api/v2/environments/globex/prod/policies",
               {"policy_names": ["prod-rules"]}).status_code == 404
