"""kosli CLI conformance: ``kosli allow artifact``, ``kosli assert artifact`` and ``kosli search``.

Each test sends what the CLI builds (``internal/requests/requests.go``, ``newHTTPRequest``): the JSON body
is Go's ``json.Marshal`` of the command's payload struct (compact, fields in struct order, none omitted
unless tagged ``omitempty``), GET requests carry no body, and every request has ``Content-Type:
application/json; charset=utf-8``, ``User-Agent: Kosli/<version>`` and ``Authorization: Bearer <token>``.
The answer is then read the way the CLI reads it: every field it takes out of the JSON must be there with
the type its Go code asserts (an unchecked ``.(string)`` / ``.(bool)`` / ``.([]interface{})`` panics)."""

import json

import pytest
from rest_framework.test import APIClient

from policies import services
from policies.models import AllowlistEntry
from tenants.choices import Role
from tests.policies.helpers import fp, make_env

pytestmark = pytest.mark.django_db

CLI_AGENT = "Kosli/v2.11.32"


def go_json(payload: dict) -> bytes:
    """Go's json.Marshal of a struct without omitempty: every field, compact, struct order."""
    return json.dumps(payload, separators=(",", ":")).encode()


def cli(token: str, method: str, path: str, payload: dict | None = None):
    """One request as ``kosliClient.Do`` sends it."""
    client = APIClient()
    body = go_json(payload) if method != "GET" else b""
    return client.generic(method, path, data=body, content_type="application/json; charset=utf-8",
                          HTTP_USER_AGENT=CLI_AGENT, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_allow_artifact(org, token_for):
    """``cmd/kosli/allowArtifact.go`` ``allowArtifactOptions.run``: ``PUT /api/v2/allowlists/{org}/{env}``
    with ``AllowlistPayload`` ``{"artifact_fingerprint", "artifact_name", "description"}``. The CLI reads
    no field of the answer; anything but 200/201 is a failure. The entry must land with kosli's names
    mapped to csm's (fingerprint, artifact name, reason) and be what the allowlist then lists."""
    env = make_env(org)
    token = token_for(org, Role.ADMIN)
    answer = cli(token, "PUT", "/api/v2/allowlists/acme/prod", {
        "artifact_fingerprint": fp(7), "artifact_name": "datadog/agent:7", "description": "vendor agent"})
    assert answer.status_code in (200, 201), answer.content
    entry = AllowlistEntry.objects.get(environment=env)
    assert (entry.fingerprint, entry.artifact_name, entry.reason) == (fp(7), "datadog/agent:7", "vendor agent")
    assert services.active_allowlist(env).keys() == {fp(7)}
    listed = cli(token, "GET", "/api/v2/allowlists/acme/prod").json()
    assert [(e["fingerprint"], e["artifact_name"], e["reason"]) for e in listed] == [
        (fp(7), "datadog/agent:7", "vendor agent")]
    # a bad fingerprint under kosli's name is refused the way csm refuses any bad input
    bad = cli(token, "PUT", "/api/v2/allowlists/acme/prod", {
        "artifact_fingerprint": "NOT-HEX", "artifact_name": "x", "description": "y"})
    assert bad.status_code == 400 and "artifact_fingerprint" in bad.json()["error"]["fields"]
    assert AllowlistEntry.objects.count() == 1
