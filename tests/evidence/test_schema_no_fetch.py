"""Custom attestation types never make csm fetch anything (issue 11, High): a schema's ``$ref`` to a URL
or a file is refused when the type is created, and a row stored before that check existed is never
followed when a member attests. Oversized, over-deep and exponential schemas are refused by a limit
that the answer names."""

import json

import pytest
from django.conf import settings

from csm.lib import jsonschemas
from evidence.models import Attestation, CustomAttestationType
from tests.evidence.conftest import SERVED_SECRET, attest, begin_trail, make_flow

pytestmark = pytest.mark.django_db
TYPES = "/api/v2/orgs/acme/attestation-types"


@pytest.fixture
def trail(reporter):
    make_flow(reporter)
    begin_trail(reporter)
    return "build-1"


@pytest.fixture
def secret_file(tmp_path):
    """A local JSON file whose contents must never reach an answer."""
    path = tmp_path / "secret.json"
    path.write_text(json.dumps({"type": "integer", "enum": ["file-secret-91c2"], "description": "file-secret-91c2"}))
    return path


def _define(client, schema, name="scanned"):
    return client.post(TYPES, {"name": name, "schema": schema, "rule": ""}, format="json")


def _stored(org, schema, name="legacy"):
    """A type row written straight to the database, as one created before the check existed would be."""
    return CustomAttestationType.objects.create(org=org, name=name, schema=schema)


def _attest_custom(client, type_name, data):
    return attest(client, "acme", "backend", "build-1", "custom",
                  {"attestation_name": "check", "type_name": type_name, "attestation_data": data})


@pytest.mark.parametrize("path", ["/json", "/redirect"])
def test_remote_ref_is_refused_at_creation_without_a_request(admin_api, counting_server, path):
    base, hits = counting_server
    ref = f"{base}{path}"
    response = _define(admin_api, {"type": "object", "properties": {"x": {"$ref": ref}}})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "schema" in error["fields"]
    assert ref in error["message"] and "does not resolve inside the schema" in error["message"]
    assert hits == []
    assert not CustomAttestationType.objects.exists()


def test_ref_made_remote_by_an_id_is_refused_too(admin_api, counting_server):
    base, hits = counting_server
    response = _define(admin_api, {"$id": f"{base}/schemas/", "properties": {"x": {"$ref": "other.json"}}})
    assert response.status_code == 400
    assert "'other.json'" in response.json()["error"]["message"]
    assert hits == []


def test_file_ref_is_refused_at_creation_and_its_contents_never_answer(admin_api, secret_file):
    response = _define(admin_api, {"$ref": secret_file.as_uri()})
    assert response.status_code == 400
    assert secret_file.as_uri() in response.json()["error"]["message"]
    assert b"file-secret-91c2" not in response.content


@pytest.mark.parametrize("path", ["/json", "/redirect"])
def test_stored_remote_ref_is_never_fetched_when_attesting(org, reporter, trail, counting_server, path):
    base, hits = counting_server
    _stored(org, {"type": "object", "properties": {"x": {"$ref": f"{base}{path}"}}})
    response = _attest_custom(reporter, "legacy", {"x": "not an integer"})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "type_name" in error["fields"]
    assert f"{base}{path}" in error["message"] and "never fetches" in error["message"]
    assert SERVED_SECRET.encode() not in response.content
    assert hits == []
    assert not Attestation.objects.exists()


def test_stored_file_ref_is_never_read_when_attesting(org, reporter, trail, secret_file):
    _stored(org, {"$ref": secret_file.as_uri()})
    response = _attest_custom(reporter, "legacy", "anything")
    assert response.status_code == 400
    assert secret_file.as_uri() in response.json()["error"]["message"]
    assert b"file-secret-91c2" not in response.content


@pytest.mark.parametrize("schema", [
    {"definitions": {"pct": {"type": "number", "maximum": 100}},
     "properties": {"coverage": {"$ref": "#/definitions/pct"}}},
    {"$defs": {"pct": {"type": "number", "maximum": 100}}, "properties": {"coverage": {"$ref": "#/$defs/pct"}}},
    {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"pct": {"type": "number", "maximum": 100}},
     "properties": {"coverage": {"$ref": "#/definitions/pct"}}},
])
def test_local_refs_still_work(admin_api, reporter, trail, counting_server, schema):
    _, hits = counting_server
    response = _define(admin_api, schema, name="coverage")
    assert response.status_code == 201, response.content
    assert _attest_custom(reporter, "coverage", {"coverage": 87}).status_code == 201
    bad = _attest_custom(reporter, "coverage", {"coverage": 120})
    assert bad.status_code == 400
    assert "attestation_data.coverage" in bad.json()["error"]["fields"]
    assert hits == []


def test_a_local_ref_to_nowhere_is_refused_naming_it(admin_api):
    response = _define(admin_api, {"properties": {"x": {"$ref": "#/$defs/missing"}}})
    assert response.status_code == 400
    assert "'#/$defs/missing' does not resolve" in response.json()["error"]["message"]


def _nested(levels):
    """A schema ``levels`` JSON levels deep (``not`` of ``not`` of ...)."""
    schema = {"type": "string"}
    for _ in range(levels - 1):
        schema = {"not": schema}
    return schema


def test_a_500_level_schema_is_refused_naming_the_depth_limit(admin_api):
    response = _define(admin_api, _nested(500))
    assert response.status_code == 400
    # the request body's own depth limit stops it before anything parses the schema
    assert f"body is JSON nested more than {settings.CSM_JSON_MAX_DEPTH} levels deep (the limit)" in (
        response.json()["error"]["message"])
    response = _define(admin_api, _nested(jsonschemas.MAX_SCHEMA_DEPTH + 1))
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "schema": [f"schema is nested deeper than the limit of {jsonschemas.MAX_SCHEMA_DEPTH} levels"]}
    assert _define(admin_api, _nested(10)).status_code == 201  # a reasonable depth is fine


def test_an_oversize_schema_is_413_naming_the_size_limit(admin_api):
    schema = {"type": "string", "enum": [f"value-{i}-" + "x" * 100 for i in range(1000)]}
    response = _define(admin_api, schema)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_large" and "schema" in error["fields"]
    assert f"larger than the limit of {jsonschemas.MAX_SCHEMA_BYTES} bytes" in error["message"]


def test_stored_over_deep_schema_is_refused_when_attesting(org, reporter, trail):
    _stored(org, _nested(500))
    response = _attest_custom(reporter, "legacy", "x")
    assert response.status_code == 400
    assert "nested deeper than the limit" in response.json()["error"]["message"]


def test_patterns_python_would_backtrack_on_are_refused(admin_api):
    # RE2 runs every schema pattern in linear time; it has no look-around or back-references
    response = _define(admin_api, {"type": "string", "pattern": "^(?=(a+)+)\\1$"})
    assert response.status_code == 400
    assert "is not a regular expression csm can run" in response.json()["error"]["message"]
    ok = _define(admin_api, {"type": "string", "pattern": "^[a-z]+-[0-9]+$"}, name="ticket")
    assert ok.status_code == 201


def test_a_schema_whose_refs_multiply_work_stops_at_the_step_limit(admin_api, reporter, trail):
    # 40 definitions, each referring twice to the next: 2**40 evaluations without a budget
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(40)}
    defs["d40"] = {"type": "string"}
    response = _define(admin_api, {"$defs": defs, "$ref": "#/$defs/d0"}, name="exponential")
    assert response.status_code == 201, response.content
    response = _attest_custom(reporter, "exponential", "x")
    assert response.status_code == 400
    error = response.json()["error"]
    # the step budget normally stops it; on a loaded machine the wall-clock bound may come first
    assert (f"more than the limit of {jsonschemas.MAX_VALIDATION_STEPS} steps" in error["message"]
            or f"longer than the limit of {jsonschemas.MAX_VALIDATION_SECONDS:g} seconds" in error["message"])
    assert "attestation_data" in error["fields"]


def test_a_self_referencing_schema_is_a_400_not_a_crash(admin_api, reporter, trail):
    assert _define(admin_api, {"$ref": "#"}, name="loop").status_code == 201
    response = _attest_custom(reporter, "loop", {})
    assert response.status_code == 400
    assert "recursed without end" in response.json()["error"]["message"]
