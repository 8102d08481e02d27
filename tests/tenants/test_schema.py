"""The OpenAPI schema: generates, declares the error responses, and our endpoints generate cleanly."""

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

OURS = ("/api/v2/orgs",)  # tenants and audit endpoints


@pytest.fixture(scope="module")
def generated():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    messages = list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    return schema, messages


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_schema_is_served(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200 and b"/api/v2/orgs/{org}/members" in response.content


def test_every_operation_declares_401_403_404(generated):
    schema, _ = generated
    missing = [f"{method.upper()} {path}: {code}" for path, method, op in _operations(schema)
               for code in ("401", "403", "404") if code not in op["responses"]]
    assert not missing, missing


def test_our_endpoints_generate_without_warnings(generated):
    schema, messages = generated
    paths = [p for p in schema["paths"] if p.startswith(OURS)]
    assert "/api/v2/orgs/{org}/audit-events" in paths and "/api/v2/orgs/{org}/tokens/{token_id}/rotate" in paths
    ours = [m for m in messages if "tenants" in m or "audit.api" in m or "AuditEvent" in m]
    assert not ours, ours


def test_secrets_appear_only_in_create_and_rotate_responses(generated):
    schema, _ = generated
    components = schema["components"]["schemas"]
    assert "token" in components["TokenCreated"]["properties"]
    assert "token" not in components["Token"]["properties"]
    rotate = schema["paths"]["/api/v2/orgs/{org}/tokens/{token_id}/rotate"]["post"]
    assert rotate["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("TokenCreated")


def test_audit_filters_are_documented(generated):
    schema, _ = generated
    params = {p["name"] for p in schema["paths"]["/api/v2/orgs/{org}/audit-events"]["get"]["parameters"]}
    assert {"actor", "action", "target_type", "target_id", "from", "to", "page", "per_page"} <= params
