"""Helpers of the SCIM tests: an org's SCIM token, a client speaking SCIM, and the replay of the requests Okta
and Entra ID publish (tests/identity/fixtures/scim/, SOURCES.md says where each came from)."""

import json
from pathlib import Path
from urllib.parse import quote

from django.test import Client

from audit.context import AuditContext
from identity.scim.services import create_scim_token

FIXTURES = Path(__file__).parent / "fixtures" / "scim"
SCIM = "application/scim+json"


def scim_token(org, name="idp") -> str:
    _, plaintext = create_scim_token(AuditContext.system("test"), org, name)
    return plaintext


class ScimClient:
    """Django's test client sending SCIM requests with a bearer token, as an IdP does (no session, no CSRF
    token: the client enforces CSRF checks, so a view that needed one would fail)."""

    def __init__(self, token: str | None):
        self.client = Client(enforce_csrf_checks=True)
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body=None, content_type=SCIM, **extra):
        if not path.startswith("/scim/v2/"):
            path = "/scim/v2" + path
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method.upper(), path, data=data, content_type=content_type,
                                   **self.headers, **extra)

    def get(self, path, **extra):
        return self.request("GET", path, **extra)

    def post(self, path, body, **extra):
        return self.request("POST", path, body, **extra)

    def put(self, path, body, **extra):
        return self.request("PUT", path, body, **extra)

    def patch(self, path, body, **extra):
        return self.request("PATCH", path, body, **extra)

    def delete(self, path, **extra):
        return self.request("DELETE", path, **extra)


def fixtures(vendor: str) -> dict[str, dict]:
    """The vendor's published requests by file name (without .json), in replay order."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((FIXTURES / vendor).glob("*.json"))}


def replay(client: ScimClient, fixture: dict, ids: dict[str, str]):
    """Send a published request: its documented resource ids replaced by csm's (``ids``: documented → ours),
    the target percent-encoded as an HTTP client sends it (Entra's documents print it unencoded)."""
    method, _, target = fixture["request"].partition(" ")
    target = target.strip().removesuffix(" HTTP/1.1")
    body = fixture.get("body")
    for documented, ours in ids.items():
        target = target.replace(documented, ours)
        if body is not None:
            body = json.loads(json.dumps(body).replace(documented, ours))
    target = quote(target, safe="/?=&%:@$,+")
    return client.request(method, target, body)
