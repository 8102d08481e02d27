"""Custom attestation types (JSON Schema + safe rule) and overrides (admin only, reason, audited)."""

import pytest

from audit.choices import AuditAction
from audit.models import AuditEvent
from tests.evidence.conftest import attest, begin_trail, make_flow

pytestmark = pytest.mark.django_db

COVERAGE_TYPE = {
    "name": "coverage-report",
    "description": "line coverage from the test run",
    "schema": {"type": "object", "required": ["coverage", "flaky"],
               "properties": {"coverage": {"type": "number", "minimum": 0, "maximum": 100},
                              "flaky": {"type": "boolean"}}},
    "rule": "coverage >= 80 and not flaky",
}


@pytest.fixture
def trail(reporter):
    make_flow(reporter, template={"trail": [{"name": "coverage"}, {"name": "review"}]})
    begin_trail(reporter)
    return "build-1"


@pytest.fixture
def coverage_type(admin_api):
    response = admin_api.post("/api/v2/orgs/acme/attestation-types", COVERAGE_TYPE, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _custom(client, data, name="coverage"):
    return attest(client, "acme", "backend", "build-1", "custom",
                  {"attestation_name": name, "type_name": "coverage-report", "attestation_data": data})


def test_custom_type_rule_decides_compliance(reporter, trail, coverage_type):
    good = _custom(reporter, {"coverage": 91.5, "flaky": False})
    assert good.status_code == 201, good.content
    assert good.json()["is_compliant"] is True
    assert good.json()["type"] == "coverage-report"
    low = _custom(reporter, {"coverage": 42, "flaky": False}).json()
    assert low["is_compliant"] is False
    assert low["problems"] == ["rule not satisfied: coverage >= 80 and not flaky"]


def test_custom_type_schema_violations_are_400_with_the_path(reporter, trail, coverage_type):
    response = _custom(reporter, {"coverage": 120, "flaky": False})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "attestation_data.coverage" in error["fields"]
    assert "120" in error["message"]
    response = _custom(reporter, {"coverage": 90})
    assert response.status_code == 400
    assert "'flaky' is a required property" in response.json()["error"]["message"]


def test_unknown_custom_type_and_bad_definitions(reporter, admin_api, trail):
    response = _custom(reporter, {"coverage": 90, "flaky": False})
    assert response.status_code == 400
    assert "type_name" in response.json()["error"]["fields"]
    bad_rule = {**COVERAGE_TYPE, "rule": "coverage >= "}
    response = admin_api.post("/api/v2/orgs/acme/attestation-types", bad_rule, format="json")
    assert response.status_code == 400
    assert "rule" in response.json()["error"]["fields"]
    bad_schema = {**COVERAGE_TYPE, "schema": {"type": "no-such-type"}}
    response = admin_api.post("/api/v2/orgs/acme/attestation-types", bad_schema, format="json")
    assert response.status_code == 400
    assert "schema" in response.json()["error"]["fields"]
    # a member may not define types (they change how compliance is judged)
    assert reporter.post("/api/v2/orgs/acme/attestation-types", COVERAGE_TYPE, format="json").status_code == 403


def _override(client, status, reason="approved by the CAB", name="review"):
    return client.post("/api/v2/attestations/acme/backend/trail/build-1/override", {
        "attestation_name": name, "reason": reason, "new_compliance_status": status,
        "original_attestation_type": "generic"}, format="json")


def test_override_is_admin_only_needs_a_reason_and_is_audited(reporter, admin_api, trail):
    attest(reporter, "acme", "backend", "build-1", "generic", {"attestation_name": "review", "is_compliant": False})
    assert _override(reporter, True).status_code == 403
    response = _override(admin_api, True, reason="  ")
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    response = _override(admin_api, True, name="nothing-by-that-name")
    assert response.status_code == 400
    response = _override(admin_api, True)
    assert response.status_code == 201, response.content
    compliance = reporter.get("/api/v2/trails/acme/backend/build-1").json()["compliance"]
    review = next(a for a in compliance["attestations"] if a["name"] == "review")
    assert review["is_compliant"] is False and review["effective_compliant"] is True and review["overridden"]
    assert review["override_reason"] == "approved by the CAB"
    event = AuditEvent.objects.get(action=AuditAction.ATTESTATION_OVERRIDDEN)
    assert event.after["reason"] == "approved by the CAB"


def test_newer_attestation_supersedes_older_and_its_override(reporter, admin_api, trail):
    attest(reporter, "acme", "backend", "build-1", "generic", {"attestation_name": "coverage"})
    attest(reporter, "acme", "backend", "build-1", "generic", {"attestation_name": "review", "is_compliant": False})
    assert _override(admin_api, True).status_code == 201
    assert reporter.get("/api/v2/trails/acme/backend/build-1").json()["compliance"]["compliant"] is True
    # a newer review replaces the overridden one for compliance; the older stays visible
    attest(reporter, "acme", "backend", "build-1", "generic", {"attestation_name": "review", "is_compliant": False})
    trail = reporter.get("/api/v2/trails/acme/backend/build-1").json()
    assert trail["compliance"]["compliant"] is False
    assert trail["compliance"]["reasons"] == ["attestation review is non-compliant"]
    listed = reporter.get("/api/v2/attestations/acme/backend/trail/build-1").json()
    assert [(a["name"], a["type"]) for a in listed].count(("review", "generic")) == 2
    assert [(a["name"], a["type"]) for a in listed].count(("review", "override")) == 1
