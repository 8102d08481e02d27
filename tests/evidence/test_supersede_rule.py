"""A failing attestation csm verified from evidence cannot be neutralised by a newer one of another type
(issue 11, Low): a member posting a ``generic`` with ``is_compliant: true`` under the name of a failing
JUnit attestation gets a 409 naming the rule, and the trail stays red. Re-running the tests and attesting
the new JUnit files, or an override with a reason, still turn it green."""

import pytest

from evidence import selectors
from evidence.choices import Verification
from evidence.models import Attestation
from tests.evidence.conftest import attest, begin_trail, make_flow, tar_gz

pytestmark = pytest.mark.django_db
TRAIL = "/api/v2/trails/acme/backend/build-1"
PASSING_JUNIT = (b'<testsuite name="unit" tests="2"><testcase name="a"/><testcase name="b"/></testsuite>')


@pytest.fixture
def failing_junit(reporter, pytest_junit_xml):
    make_flow(reporter, template={"trail": [{"name": "unit-tests", "type": "junit"}]})
    begin_trail(reporter)
    response = attest(reporter, "acme", "backend", "build-1", "junit", {"attestation_name": "unit-tests"},
                      tar_gz({"report.xml": pytest_junit_xml}))
    body = response.json()
    assert body["is_compliant"] is False and body["verification"] == Verification.VERIFIED
    return body


def _compliance(client):
    return client.get(TRAIL).json()["compliance"]


def test_a_generic_cannot_turn_a_failing_verified_junit_green(reporter, failing_junit):
    response = attest(reporter, "acme", "backend", "build-1", "generic",
                      {"attestation_name": "unit-tests", "is_compliant": True})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and "attestation_name" in error["fields"]
    assert "failing junit attestation verified from its evidence" in error["message"]
    assert "override" in error["message"]
    assert Attestation.objects.filter(name="unit-tests").count() == 1
    compliance = _compliance(reporter)
    assert compliance["compliant"] is False
    assert compliance["reasons"] == ["attestation unit-tests is non-compliant"]


def test_a_junit_summary_without_files_cannot_either(reporter, failing_junit):
    response = attest(reporter, "acme", "backend", "build-1", "junit", {
        "attestation_name": "unit-tests",
        "junit_results": [{"total": 4, "failures": 0, "errors": 0, "skipped": 0}]})
    assert response.status_code == 409
    assert _compliance(reporter)["compliant"] is False


def test_new_junit_files_supersede_it(reporter, failing_junit):
    response = attest(reporter, "acme", "backend", "build-1", "junit", {"attestation_name": "unit-tests"},
                      tar_gz({"report.xml": PASSING_JUNIT}))
    assert response.status_code == 201, response.content
    assert _compliance(reporter)["compliant"] is True


def test_an_override_with_a_reason_still_accepts_it(reporter, admin_api, failing_junit):
    response = admin_api.post("/api/v2/attestations/acme/backend/trail/build-1/override", {
        "attestation_name": "unit-tests", "reason": "flaky test, ticket OPS-12",
        "new_compliance_status": True}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["results"]["overrides"] == failing_junit["id"]
    assert _compliance(reporter)["compliant"] is True


def test_a_generic_stored_anyway_does_not_count_and_overrides_target_the_junit(org, reporter, admin_api,
                                                                                 failing_junit):
    # rows written before this rule existed (or by anything that skipped the service) get the same verdict
    junit = Attestation.objects.get(pk=failing_junit["id"])
    sneaky = Attestation.objects.create(org=org, flow=junit.flow, trail=junit.trail, name="unit-tests",
                                        type="generic", is_compliant=True)
    compliance = _compliance(reporter)
    assert compliance["compliant"] is False
    entry = next(a for a in compliance["attestations"] if a["name"] == "unit-tests")
    assert entry["id"] == junit.pk and entry["not_superseded_by"] == [sneaky.pk]
    override = admin_api.post("/api/v2/attestations/acme/backend/trail/build-1/override", {
        "attestation_name": "unit-tests", "reason": "accepted by the CAB", "new_compliance_status": True},
        format="json")
    assert override.json()["results"]["overrides"] == junit.pk
    assert _compliance(reporter)["compliant"] is True


def test_failing_unverified_attestations_are_superseded_as_before(reporter, failing_junit):
    attest(reporter, "acme", "backend", "build-1", "generic", {"attestation_name": "review", "is_compliant": False})
    response = attest(reporter, "acme", "backend", "build-1", "generic", {"attestation_name": "review"})
    assert response.status_code == 201
    entries = {a["name"]: a for a in _compliance(reporter)["attestations"]}
    assert entries["review"]["effective_compliant"] is True


def test_the_rule_holds_for_attestations_about_an_artifact(org, reporter, failing_junit, pytest_junit_xml):
    fingerprint = "7d" * 32
    reporter.post("/api/v2/artifacts/acme/backend", {"fingerprint": fingerprint, "filename": "app",
                                                     "trail_name": "build-1"}, format="json")
    failing = attest(reporter, "acme", "backend", "build-1", "junit",
                     {"attestation_name": "it-tests", "artifact_fingerprint": fingerprint},
                     tar_gz({"report.xml": pytest_junit_xml}))
    assert failing.status_code == 201
    response = attest(reporter, "acme", "backend", "build-1", "generic",
                      {"attestation_name": "it-tests", "artifact_fingerprint": fingerprint, "is_compliant": True})
    assert response.status_code == 409
    assert selectors.attestations_for(org, fingerprint)["it-tests"]["is_compliant"] is False
