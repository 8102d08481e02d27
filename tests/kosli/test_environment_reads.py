"""kosli CLI conformance (issue 15, k2): reading environments the way the CLI does — the existence check of
``kosli snapshot --auto-environment``, ``kosli log environment`` and ``kosli list environments``.

Every request is what the CLI builds (internal/requests/requests.go ``newHTTPRequest``): the token as
``Authorization: Bearer``, ``User-Agent: Kosli/<version>``, ``Content-Type: application/json; charset=utf-8``,
GETs without a body, query strings as Go's ``url.Values.Encode`` writes them (keys sorted)."""

import json

import pytest

from audit.context import AuditContext
from snapshots.models import Environment
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tests.kosli.cli import CLI_AGENT, JSON, go_json, go_query
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db

KOSLI_HEADERS = {"HTTP_USER_AGENT": CLI_AGENT, "CONTENT_TYPE": JSON}


def kosli_get(client, path: str, pairs: list[tuple[str, str]] | None = None):
    url = path + ("?" + go_query(pairs) if pairs else "")
    return client.get(url, **KOSLI_HEADERS)


def kosli_put(client, path: str, payload: dict):
    headers = {key: value for key, value in KOSLI_HEADERS.items() if key != "CONTENT_TYPE"}
    return client.generic("PUT", path, go_json(payload),
                          content_type=KOSLI_HEADERS["CONTENT_TYPE"], **headers)


@pytest.fixture
def agent(api, org, token_for):
    return api(token=token_for(org, Role.SNAPSHOTTER))


@pytest.fixture
def reader(api, org, token_for):
    return api(token=token_for(org, Role.READER))


# --- kosli snapshot ... --auto-environment ---------------------------------------------------------

def test_auto_environment_check_then_create_as_snapshotter(agent, reader):
    """cmd/kosli/snapshotAutoEnvironment.go ``getEnvironmentTypeIfExists`` then ``createEnvironmentForSnapshot``:
    GET /api/v2/environments/{org}/{env} goes on only on 200 (reading ``type``) or 404; on 404 it PUTs
    ``CreateEnvironmentPayload`` (createEnvironment.go: name, type, description; the *bool and slice fields
    omitted when unset). A snapshotter learns existence and type, never what was reported."""
    missing = kosli_get(agent, "/api/v2/environments/acme/cluster")
    assert missing.status_code == 404

    created = kosli_put(agent, "/api/v2/environments/acme",
                        {"name": "cluster", "type": "K8S", "description": "Auto-created by kosli snapshot"})
    assert created.status_code in (200, 201), created.json()

    found = kosli_get(agent, "/api/v2/environments/acme/cluster")
    assert found.status_code == 200
    assert found.json() == {"name": "cluster", "type": "K8S", "archived": False}

    full = kosli_get(reader, "/api/v2/environments/acme/cluster").json()
    assert full["type"] == "K8S" and "artifact_count" in full and "latest_snapshot_index" in full


def test_auto_environment_check_sees_a_logical_environment_type(agent, org):
    """snapshotAutoEnvironment.go ``ensureEnvironment`` refuses to report into a logical environment: it must
    read ``type`` "logical" from the snapshotter's answer."""
    Environment.objects.create(org=org, name="all", type="logical")
    answer = kosli_get(agent, "/api/v2/environments/acme/all")
    assert answer.status_code == 200 and answer.json()["type"] == "logical"


def test_auto_environment_check_of_another_org_is_404(agent, other_org):
    """Tenancy: the existence check never reveals another org's environment (the org itself is a 404)."""
    Environment.objects.create(org=other_org, name="cluster", type="K8S")
    assert kosli_get(agent, "/api/v2/environments/globex/cluster").status_code == 404


# --- kosli log environment -------------------------------------------------------------------------

@pytest.fixture
def three_snapshots(org, django_capture_on_commit_callbacks):
    """#1 starts app-1, #2 starts app-2, #3 exits app-1 (reports accepted and ingested in this process)."""
    ctx = AuditContext.system("test")
    env, _ = create_or_update_environment(ctx, org, "prod", "server")
    for fingerprints in ([fp(1)], [fp(1), fp(2)], [fp(2)]):
        body = server_report(*fingerprints, names=[f"app-{f[-1]}" for f in fingerprints])
        with django_capture_on_commit_callbacks(execute=False):
            report, _ = accept_report(ctx, env, "server", json.dumps(body).encode(), "")
        ingest_report(report.pk)
    return env


def log_env(client, interval="", reverse=False, page=1, per_page=15, **extra):
    """cmd/kosli/logEnvironment.go ``getEnvironmentEvents``: page, per_page, interval (even when empty) and
    reverse always; start, end, start_ts, end_ts only when set; repo_name once per --repo."""
    pairs = [("page", str(page)), ("per_page", str(per_page)), ("interval", interval),
             ("reverse", "true" if reverse else "false"), *extra.items()]
    return kosli_get(client, "/api/v2/environments/acme/prod/events", pairs)


def shown(answer) -> list[int]:
    """What printEnvironmentEventsLogAsTable (listSnapshots.go) reads of each event, checked for type (it
    asserts float64 / string and panics otherwise); the snapshot numbers in answer order."""
    assert answer.status_code == 200, answer.json()
    for event in answer.json():
        assert isinstance(event["snapshot_index"], int)
        assert all(isinstance(event[key], str) for key in ("artifact_name", "sha256", "description", "pipeline"))
        assert isinstance(event["reported_at"], (int, float))
    return [event["snapshot_index"] for event in answer.json()]


def test_log_environment_default_is_latest_first_and_reverse_oldest_first(owner_api, three_snapshots):
    """logEnvironment.go: "ordered from latest to oldest"; --reverse sends reverse=true (oldest first)."""
    assert shown(log_env(owner_api)) == [3, 2, 1]
    assert shown(log_env(owner_api, reverse=True)) == [1, 2, 3]
    assert shown(log_env(owner_api, per_page=2, page=2)) == [1]


def test_log_environment_interval(owner_api, three_snapshots):
    """--interval: A..B with ~N, N, NOW (logEnvironmentLongDesc), or one expression: that snapshot only."""
    assert shown(log_env(owner_api, interval="1..2")) == [2, 1]
    assert shown(log_env(owner_api, interval="1..2", reverse=True)) == [1, 2]
    assert shown(log_env(owner_api, interval="NOW")) == [3]
    assert shown(log_env(owner_api, interval="~1..NOW")) == [3, 2]
    assert shown(log_env(owner_api, interval="-3")) == [1]
    assert shown(log_env(owner_api, interval="2..")) == [3, 2]
    bad = log_env(owner_api, interval="3~5")
    assert bad.status_code == 400 and "interval" in bad.json()["error"]["fields"]


def test_log_environment_start_end(owner_api, three_snapshots):
    """--start / --end: a snapshot index or a time expression (NOW, 1hour) (eventsStartFlag, eventsEndFlag)."""
    assert shown(log_env(owner_api, start="2")) == [3, 2]
    assert shown(log_env(owner_api, end="2")) == [2, 1]
    assert shown(log_env(owner_api, start="1hour", end="NOW")) == [3, 2, 1]
    assert shown(log_env(owner_api, start="NOW")) == []
    for field, value in (("start", "yesterday"), ("end", "99999999999999999999days"), ("start", "٣")):
        bad = log_env(owner_api, **{field: value})
        assert bad.status_code == 400 and field in bad.json()["error"]["fields"], (field, value)


def test_log_environment_unix_timestamps(owner_api, three_snapshots):
    """--start-ts / --end-ts: Unix seconds, integer or float, sent with FormatFloat(v, 'f', -1, 64)."""
    assert shown(log_env(owner_api, start_ts="1700000000.5")) == [3, 2, 1]
    assert shown(log_env(owner_api, start_ts="1700000000", end_ts="1700086400")) == []
    for field, value in (("start_ts", "1e9"), ("start_ts", "٣"), ("end_ts", "-5"), ("end_ts", "9999999999999")):
        bad = log_env(owner_api, **{field: value})
        assert bad.status_code == 400 and field in bad.json()["error"]["fields"], (field, value)


def test_log_environment_of_another_org_is_404(api, token_for, other_org, three_snapshots):
    """Tenancy: globex's reader asking for acme's events gets a 404."""
    stranger = api(token=token_for(other_org, Role.READER))
    assert log_env(stranger).status_code == 404


# --- kosli list environments -----------------------------------------------------------------------

@pytest.fixture
def four_environments(org, other_org):
    ctx = AuditContext.system("test")
    create_or_update_environment(ctx, org, "prod-eu", "K8S", tags={"team": "platform", "tier": "1"})
    create_or_update_environment(ctx, org, "prod-us", "ECS", tags={"team": "payments"})
    create_or_update_environment(ctx, org, "staging", "K8S", tags={"team": "platform"})
    create_or_update_environment(ctx, org, "lab", "server")
    create_or_update_environment(ctx, other_org, "prod-eu", "K8S", tags={"team": "platform"})


def list_envs(client, *pairs):
    """cmd/kosli/listEnvironments.go ``run``: page / per_page only with --page or --page-limit; name once;
    type, space_id and tag once per value; sort and sort_direction when set."""
    return kosli_get(client, "/api/v2/environments/acme", list(pairs))


def names(answer) -> list[str]:
    """What printEnvListAsTable reads of each environment: name, type (strings), last_reported_at and
    last_modified_at (a number or null), tags (an object), policies (an array or absent)."""
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    envs = body["environments"] if isinstance(body, dict) else body
    for env in envs:
        assert isinstance(env["name"], str) and isinstance(env["type"], str)
        assert env["last_reported_at"] is None or isinstance(env["last_reported_at"], (int, float))
        assert env["last_modified_at"] is None or isinstance(env["last_modified_at"], (int, float))
        assert isinstance(env["tags"], dict)
        assert isinstance(env.get("policies", []), list)
    return [env["name"] for env in envs]


def test_list_environments_filters(reader, four_environments):
    """--name (case-insensitive substring), --type and --tag (repeatable: any of them; key or key:value)."""
    assert names(list_envs(reader)) == ["lab", "prod-eu", "prod-us", "staging"]
    assert names(list_envs(reader, ("name", "PROD"))) == ["prod-eu", "prod-us"]
    assert names(list_envs(reader, ("type", "K8S"), ("type", "ECS"))) == ["prod-eu", "prod-us", "staging"]
    assert names(list_envs(reader, ("type", "K8S"), ("tag", "team:platform"))) == ["prod-eu", "staging"]
    assert names(list_envs(reader, ("tag", "tier"))) == ["prod-eu"]
    assert names(list_envs(reader, ("tag", "tier:1"), ("tag", "team:payments"))) == ["prod-eu", "prod-us"]
    assert names(list_envs(reader, ("tag", "team:nobody"))) == []


def test_list_environments_sort(reader, org, four_environments, django_capture_on_commit_callbacks):
    """--sort name|last_modified_at|last_changed_at, --sort-direction asc|desc; never-reported last."""
    ctx = AuditContext.system("test")
    create_or_update_environment(ctx, org, "edge", "server")
    for name in ("lab", "edge"):  # lab changes first, then edge
        env = Environment.objects.get(org=org, name=name)
        with django_capture_on_commit_callbacks(execute=False):
            report, _ = accept_report(ctx, env, "server", json.dumps(server_report(fp(7))).encode(), "")
        ingest_report(report.pk)
    assert names(list_envs(reader, ("sort", "name"), ("sort_direction", "desc"))) == [
        "staging", "prod-us", "prod-eu", "lab", "edge"]
    assert names(list_envs(reader, ("sort", "last_changed_at"))) == ["lab", "edge", "prod-eu", "prod-us", "staging"]
    assert names(list_envs(reader, ("sort", "last_modified_at"), ("sort_direction", "desc"))) == [
        "edge", "lab", "prod-eu", "prod-us", "staging"]


def test_list_environments_paginated(reader, four_environments):
    """--page / --page-limit: the answer is paginatedEnvsResponse {page, per_page, total_pages, total_count,
    environments} (listEnvironments.go), which printEnvListAsTable decodes."""
    answer = list_envs(reader, ("page", "2"), ("per_page", "3"))
    assert names(answer) == ["staging"]
    body = answer.json()
    assert (body["page"], body["per_page"], body["total_pages"], body["total_count"]) == (2, 3, 2, 4)


def test_list_environments_bad_input_names_the_parameter(reader, four_environments):
    for pairs in ([("type", "mainframe")], [("sort", "size")], [("sort_direction", "up")], [("space_id", "s1")],
                  [("per_page", "0")], [("page", "x")], [("name", "n" * 201)]):
        bad = list_envs(reader, *pairs)
        assert bad.status_code == 400 and pairs[0][0] in bad.json()["error"]["fields"], pairs
