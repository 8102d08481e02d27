"""A snapshotter (reporting agent) may create a missing environment and re-send its settings unchanged,
but not change an existing environment: a ten-year report interval would silence the agent-silent alert."""

import pytest

from snapshots.models import Environment
from tenants.choices import Role

pytestmark = pytest.mark.django_db

KOSLI_BODY = {"name": "prod", "type": "K8S", "description": "production cluster", "include_scaling": False}


def put_env(client, **body):
    return client.put("/api/v2/environments/acme", body, format="json")


@pytest.fixture
def agent(api, org, token_for):
    return api(token=token_for(org, Role.SNAPSHOTTER))


def test_snapshotter_creates_and_re_sends_unchanged(agent, org):
    assert put_env(agent, **KOSLI_BODY).status_code == 201
    again = put_env(agent, **KOSLI_BODY)
    assert again.status_code == 200 and again.json()["description"] == "production cluster"
    assert org.audit_events.filter(action="environment.created").count() == 1
    assert not org.audit_events.filter(action__in=["environment.updated", "access.denied"]).exists()


@pytest.mark.parametrize("change", [
    {"description": "muted"},
    {"tags": {"team": "nobody"}},
    {"expected_report_interval_seconds": 365 * 24 * 3600},  # a year (the most allowed): silences the alert
    {"include_scaling": True},
])
def test_snapshotter_cannot_change_an_existing_environment(agent, org, change):
    assert put_env(agent, **KOSLI_BODY).status_code == 201
    refused = put_env(agent, **{**KOSLI_BODY, **change})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "permission_denied" and "environments.edit" in error["message"]
    env = Environment.objects.get(org=org, name="prod")
    assert (env.description, env.tags, env.include_scaling) == ("production cluster", {}, False)
    assert env.expected_report_interval_seconds != 365 * 24 * 3600
    denied = org.audit_events.get(action="access.denied")
    assert denied.after["permission"] == "environments.edit"
    assert not org.audit_events.filter(action="environment.updated").exists()


def test_member_may_still_change_an_environment(agent, api, org, member_of):
    assert put_env(agent, **KOSLI_BODY).status_code == 201
    member = api(user=member_of(org, Role.MEMBER))
    changed = put_env(member, **{**KOSLI_BODY, "description": "the big one"})
    assert changed.status_code == 200 and changed.json()["description"] == "the big one"
    assert org.audit_events.filter(action="environment.updated").count() == 1
