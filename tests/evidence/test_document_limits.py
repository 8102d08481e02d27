"""Deeply nested JSON and YAML from a pipeline are a 400 naming the limit, not a 500 (issue 11: every
user-supplied document gets a depth limit before any expensive work)."""

import io
import json

import pytest
from django.conf import settings

from csm.lib import jsonschemas
from evidence.models import Attestation
from tests.evidence.conftest import attest, begin_trail, make_flow, tar_gz

pytestmark = pytest.mark.django_db
ATTEST = "/api/v2/attestations/acme/backend/trail/build-1/generic"
LIMIT = f"JSON nested more than {settings.CSM_JSON_MAX_DEPTH} levels deep (the limit)"


@pytest.fixture
def trail(reporter):
    make_flow(reporter)
    begin_trail(reporter)


def _deep(levels: int) -> str:
    return '{"attestation_name": "x", "user_data": {"a": ' + "[" * levels + "]" * levels + "}}"


@pytest.mark.parametrize("levels", [900, 100_000])
def test_deep_data_json_is_a_400_naming_the_limit(reporter, trail, levels):
    multipart = reporter.post(ATTEST, {"data_json": _deep(levels)}, format="multipart")
    body = reporter.generic("POST", ATTEST, _deep(levels), content_type="application/json")
    for response, field in ((multipart, "data_json"), (body, "body")):
        assert response.status_code == 400, response.content[:300]
        assert response.json()["error"]["fields"] == {field: [f"{field} is {LIMIT}"]}
    assert not Attestation.objects.exists()


def test_data_within_the_limit_is_accepted(reporter, trail):
    response = reporter.post(ATTEST, {"data_json": _deep(jsonschemas.MAX_DOCUMENT_DEPTH - 3)}, format="multipart")
    assert response.status_code == 201, response.content


def test_deep_yaml_template_is_a_400(reporter):
    template = io.BytesIO(("trail: " + "[" * 100_000 + "]" * 100_000).encode())
    template.name = "template.yml"
    response = reporter.put("/api/v2/flows/acme/template_file",
                            {"data_json": json.dumps({"name": "backend"}), "template_file": template},
                            format="multipart")
    assert response.status_code == 400
    assert "template" in response.json()["error"]["fields"]


def _deep_components(levels: int) -> dict:
    component = {"name": f"c{levels}", "version": "1"}
    for level in range(levels - 1, 0, -1):
        component = {"name": f"c{level}", "version": "1", "components": [component]}
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [component]}


def test_nested_sbom_components_are_parsed_within_the_depth_limit_and_refused_beyond(reporter, trail):
    # each component level is two JSON levels (object, "components" array): 30 fit in the limit of 64
    response = attest(reporter, "acme", "backend", "build-1", "sbom", {"attestation_name": "sbom"},
                      tar_gz({"bom.json": json.dumps(_deep_components(30)).encode()}))
    assert response.status_code == 201, response.content[:300]
    assert response.json()["results"]["component_count"] == 30
    response = attest(reporter, "acme", "backend", "build-1", "sbom", {"attestation_name": "sbom-deep"},
                      tar_gz({"bom.json": json.dumps(_deep_components(400)).encode()}))
    assert response.status_code == 400  # a 400 naming the limit, never a 500
    assert f"bom.json: {LIMIT}" in response.json()["error"]["message"]


def test_json_evidence_deeper_than_the_decoder_allows_is_a_400(reporter, trail):
    document = '{"bomFormat": "CycloneDX", "specVersion": "1.6", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = attest(reporter, "acme", "backend", "build-1", "sbom", {"attestation_name": "sbom"},
                      tar_gz({"bom.json": document.encode()}))
    assert response.status_code == 400
    assert f"bom.json: {LIMIT}" in response.json()["error"]["message"]
