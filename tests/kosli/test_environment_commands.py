"""kosli CLI conformance: ``kosli create environment``, ``kosli get environment`` and ``kosli archive
environment`` (``list environments``, ``log environment`` and the ``--auto-environment`` check are in
``test_environment_reads.py``).

Requests as ``kosliClient.Do`` builds them (``internal/requests/requests.go``): a PUT without a payload
still sends ``json.Marshal(nil)``, the four bytes ``null``; GETs have no body."""

import pytest

from audit.models import AuditEvent
from snapshots.models import Environment
from tenants.choices import Role
from tests.kosli.cli import cli, cli_error
from tests.policies.helpers import fp, ingest, make_env

pytestmark = pytest.mark.django_db


def create_environment(token, name, env_type, description="", include_scaling=None, require_provenance=None,
                       included=None):
    """``cmd/kosli/createEnvironment.go`` ``run``: PUT /api/v2/environments/{org} with
    ``CreateEnvironmentPayload``: name, type, description always; ``include_scaling`` and
    ``require_provenance`` (``*bool``, omitempty) only when a flag set them; ``included_environments``
    (omitempty) only for a logical environment."""
    payload = {"name": name, "type": env_type, "description": description}
    if include_scaling is not None:
        payload["include_scaling"] = include_scaling
    if require_provenance is not None:
        payload["require_provenance"] = require_provenance
    if included:
        payload["included_environments"] = included
    return cli(token, "PUT", "/api/v2/environments/acme", payload)


@pytest.fixture
def member(org, token_for):
    return token_for(org, Role.MEMBER)


def test_create_environment(org, member):
    """createEnvironment.go: 200 or 201 is success (the CLI prints "environment X was created"); running it
    again is idempotent; ``--include-scaling`` / ``--exclude-scaling`` send ``include_scaling`` true / false;
    a logical environment names its members."""
    created = create_environment(member, "prod", "K8S", "production cluster")
    assert created.status_code == 201, created.content
    again = create_environment(member, "prod", "K8S", "production cluster")
    assert again.status_code == 200
    assert create_environment(member, "staging", "ECS", include_scaling=True).status_code == 201
    assert create_environment(member, "qa", "server", include_scaling=False).status_code == 201
    assert create_environment(member, "all", "logical", included=["prod", "staging"]).status_code == 201
    envs = {e.name: e for e in Environment.objects.filter(org=org)}
    assert (envs["prod"].type, envs["prod"].description) == ("K8S", "production cluster")
    assert envs["staging"].include_scaling is True and envs["qa"].include_scaling is False
    assert sorted(e.name for e in envs["all"].included_environments.all()) == ["prod", "staging"]
    assert AuditEvent.objects.filter(org=org, action="environment.created").count() == 4


def test_create_environment_refusals(org, member, token_for):
    """A bad type is a 400 naming ``type`` with a message the CLI prints; a reader may not create (403)."""
    bad = create_environment(member, "prod", "kubernetes")
    assert bad.status_code == 400 and "type" in bad.json()["error"]["fields"] and cli_error(bad)
    reader = create_environment(token_for(org, Role.READER), "prod", "K8S")
    assert reader.status_code == 403 and cli_error(reader)
    assert not Environment.objects.filter(org=org).exists()


def read_like_print_environment_as_table(env: dict) -> dict:
    """``cmd/kosli/getEnvironment.go`` ``printEnvironmentAsTable``: ``last_reported_at`` through
    formattedTimestamp (number or null), ``state`` asserted bool unless null, ``tags`` asserted
    ``map[string]interface{}`` unconditionally (null would panic), ``policies`` asserted ``[]any`` unless
    null; name, type and description printed with %s."""
    assert env["last_reported_at"] is None or isinstance(env["last_reported_at"], (int, float))
    state = env.get("state")
    assert state is None or isinstance(state, bool)
    assert isinstance(env["tags"], dict)
    policies = env.get("policies")
    assert policies is None or isinstance(policies, list)
    return {"name": env["name"], "type": env["type"], "description": env["description"],
            "state": "N/A" if state is None else ("COMPLIANT" if state else "NON-COMPLIANT"),
            "reported": env["last_reported_at"] is not None, "tags": env["tags"], "policies": policies or []}


def test_get_environment(org, member, token_for, django_capture_on_commit_callbacks):
    """``cmd/kosli/getEnvironment.go`` ``run``: GET /api/v2/environments/{org}/{env}."""
    env = make_env(org, "prod", description="production", tags={"team": "shop"})
    reader = token_for(org, Role.READER)
    answer = cli(reader, "GET", "/api/v2/environments/acme/prod")
    assert answer.status_code == 200
    assert read_like_print_environment_as_table(answer.json()) == {
        "name": "prod", "type": "server", "description": "production", "state": "N/A", "reported": False,
        "tags": {"team": "shop"}, "policies": []}
    ingest(env, {"web": fp(1)}, django_capture_on_commit_callbacks)
    shown = read_like_print_environment_as_table(cli(reader, "GET", "/api/v2/environments/acme/prod").json())
    assert shown["reported"] is True

    missing = cli(reader, "GET", "/api/v2/environments/acme/nope")
    assert missing.status_code == 404 and cli_error(missing)


def test_get_environment_with_a_policy(org, token_for, django_capture_on_commit_callbacks):
    """getEnvironment.go prints ``policies`` (the attached policy names) and ``state``."""
    from policies import services as policies
    from tests.policies.helpers import CTX, PROVENANCE_POLICY

    env = make_env(org, "prod")
    with django_capture_on_commit_callbacks(execute=True):
        policies.save_policy(CTX, org, "prod-rules", PROVENANCE_POLICY)
        policies.attach_policies(CTX, org, env, ["prod-rules"])
    ingest(env, {"web": fp(1)}, django_capture_on_commit_callbacks)
    shown = read_like_print_environment_as_table(
        cli(token_for(org, Role.READER), "GET", "/api/v2/environments/acme/prod").json())
    assert shown["policies"] == ["prod-rules"]
    assert shown["state"] == "NON-COMPLIANT"  # web has no provenance


def test_archive_environment(org, token_for, other_org):
    """``cmd/kosli/archiveEnvironment.go``: PUT /api/v2/environments/{org}/{env}/archive with the body
    ``null`` (no payload); the CLI reads nothing back. Archiving needs ``environments.manage`` (a member
    gets 403); another org's environment is a 404. There is no ``kosli unarchive environment`` (only
    ``unarchive control``); csm's .../unarchive is its own."""
    make_env(org, "prod")
    admin = token_for(org, Role.ADMIN)
    refused = cli(token_for(org, Role.MEMBER), "PUT", "/api/v2/environments/acme/prod/archive")
    assert refused.status_code == 403 and cli_error(refused)
    archived = cli(admin, "PUT", "/api/v2/environments/acme/prod/archive")
    assert archived.status_code == 200, archived.content
    assert Environment.objects.get(org=org, name="prod").archived is True
    assert AuditEvent.objects.filter(org=org, action="environment.archived").count() == 1
    make_env(other_org, "prod")
    assert cli(admin, "PUT", "/api/v2/environments/globex/prod/archive").status_code == 404
    assert cli(admin, "PUT", "/api/v2/environments/acme/nope/archive").status_code == 404
