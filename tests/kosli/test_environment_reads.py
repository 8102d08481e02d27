"""kosli CLI conformance (issue 15, k2): reading environments the way the CLI does — the existence check of
``kosli snapshot --auto-environment``, ``kosli log environment`` and ``kosli list environments``.

Every request is what the CLI builds (internal/requests/requests.go ``newHTTPRequest``): the token as
``Authorization: Bearer``, ``User-Agent: Kosli/<version>``, ``Content-Type: application/json; charset=utf-8``,
GETs without a body, query strings as Go's ``url.Values.Encode`` writes them (keys sorted)."""

import json
from urllib.parse import urlencode

import pytest

from snapshots.models import Environment
from tenants.choices import Role

pytestmark = pytest.mark.django_db

KOSLI_HEADERS = {"HTTP_USER_AGENT": "Kosli/v2.11.0", "CONTENT_TYPE": "application/json; charset=utf-8"}


def go_query(pairs: list[tuple[str, str]]) -> str:
    """``url.Values.Encode``: keys sorted, values in the order added, ``+`` for spaces."""
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))


def kosli_get(client, path: str, pairs: list[tuple[str, str]] | None = None):
    url = path + ("?" + go_query(pairs) if pairs else "")
    return client.get(url, **KOSLI_HEADERS)


def kosli_put(client, path: str, payload: dict):
    headers = {key: value for key, value in KOSLI_HEADERS.items() if key != "CONTENT_TYPE"}
    return client.generic("PUT", path, json.dumps(payload, separators=(",", ":")),
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
