"""Every built-in attestation type with files made by the real tools, in the test itself, sent the way
the kosli CLI sends them; malformed files of each kind → 400 naming the problem."""

import json

import pytest

from evidence.models import Attestation, SbomComponent
from tests.evidence.conftest import attest, begin_trail, make_flow, tar_gz

pytestmark = pytest.mark.django_db

SUREFIRE_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:noNamespaceSchemaLocation="https://maven.apache.org/surefire/maven-surefire-plugin/xsd/surefire-test-report-3.0.xsd"
    version="3.0" name="com.example.CartTest" time="0.052" tests="3" errors="0" skipped="1" failures="0">
  <properties>
    <property name="java.version" value="17.0.9"/>
    <property name="maven.repo.local" value="/home/ci/.m2/repository"/>
  </properties>
  <testcase name="addsItem" classname="com.example.CartTest" time="0.011"/>
  <testcase name="removesItem" classname="com.example.CartTest" time="0.002"/>
  <testcase name="appliesCoupon" classname="com.example.CartTest" time="0">
    <skipped message="coupon service not configured"/>
  </testcase>
</testsuite>
"""

SPDX_JSON = {
    "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "backend",
    "documentNamespace": "https://anchore.com/syft/image/backend-5a1b", "creationInfo": {
        "licenseListVersion": "3.22", "creators": ["Organization: Anchore, Inc", "Tool: syft-0.98.0"],
        "created": "2026-11-01T10:00:00Z"},
    "packages": [
        {"name": "openssl", "SPDXID": "SPDXRef-Package-deb-openssl", "versionInfo": "3.0.11-1~deb12u2",
         "supplier": "Person: Debian OpenSSL Team", "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                           "referenceLocator": "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64"}]},
        {"name": "requests", "SPDXID": "SPDXRef-Package-python-requests", "versionInfo": "2.31.0",
         "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                           "referenceLocator": "pkg:pypi/requests@2.31.0"}]},
    ],
    "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relatedSpdxElement": "SPDXRef-Package-deb-openssl",
                       "relationshipType": "DESCRIBES"}],
}


@pytest.fixture
def trail(reporter):
    make_flow(reporter)
    begin_trail(reporter)
    return "build-1"


def _junit_results_summary(tests, failures, errors, skipped):
    """What the kosli CLI's ingestJunitDir sends in data_json."""
    return [{"name": "pytest", "failures": failures, "errors": errors, "skipped": skipped, "total": tests,
             "duration": 0.42, "timestamp": 1764390000}]


def test_junit_from_a_real_pytest_run_sent_like_kosli_attest_junit(reporter, trail, pytest_junit_xml):
    data = {"attestation_name": "unit-tests", "junit_results": _junit_results_summary(4, 1, 0, 1),
            "origin_url": "https://ci.example.com/run/7"}
    response = attest(reporter, "acme", "backend", trail, "junit", data,
                      tar_gz({"results/report.xml": pytest_junit_xml}))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["results"]["totals"] == {"tests": 4, "failures": 1, "errors": 0, "skipped": 1}
    assert body["is_compliant"] is False
    assert body["verification"] == "verified"
    assert [e["name"] for e in body["evidence"]] == ["results/report.xml"]


def test_junit_summary_that_disagrees_with_the_files_is_flagged(reporter, trail, pytest_junit_xml):
    data = {"attestation_name": "unit-tests", "junit_results": _junit_results_summary(4, 0, 0, 0)}
    body = attest(reporter, "acme", "backend", trail, "junit", data, tar_gz({"report.xml": pytest_junit_xml})).json()
    assert body["verification"] == "mismatch"
    assert body["is_compliant"] is False  # judged from the files, not the summary
    assert any("disagrees" in problem for problem in body["problems"])


def test_junit_summary_without_files_is_accepted_but_unverified(reporter, trail):
    data = {"attestation_name": "unit-tests", "junit_results": _junit_results_summary(10, 0, 0, 0)}
    body = attest(reporter, "acme", "backend", trail, "junit", data).json()
    assert body["verification"] == "unverified"
    assert body["is_compliant"] is True


def test_junit_single_xml_uploaded_as_is_maven_surefire(reporter, trail):
    # kosli uploads a single file as itself (no tar) when only one path is attached
    response = attest(reporter, "acme", "backend", trail, "junit", {"attestation_name": "it"}, SUREFIRE_XML,
                      filename="TEST-com.example.CartTest.xml")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["results"]["totals"] == {"tests": 3, "failures": 0, "errors": 0, "skipped": 1}
    assert body["results"]["suites"][0]["name"] == "com.example.CartTest"
    assert body["is_compliant"] is True


def test_malformed_junit_is_a_400_naming_the_file(reporter, trail):
    broken = SUREFIRE_XML[:200]
    response = attest(reporter, "acme", "backend", trail, "junit", {"attestation_name": "it"},
                      tar_gz({"reports/TEST-broken.xml": broken}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "reports/TEST-broken.xml" in error["message"] and "malformed XML" in error["message"]
    assert "attachment_file" in error["fields"]
    assert Attestation.objects.count() == 0


def test_xml_entity_expansion_is_refused(reporter, trail):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b'<testsuite name="x">&lol2;</testsuite>')
    response = attest(reporter, "acme", "backend", trail, "junit", {"attestation_name": "it"},
                      tar_gz({"bomb.xml": bomb}))
    assert response.status_code == 400
    assert "forbidden XML" in response.json()["error"]["message"]


def test_cyclonedx_sbom_from_cyclonedx_py(reporter, trail, cyclonedx_sbom):
    document = json.loads(cyclonedx_sbom)
    expected = {(c["name"], c.get("version", "")) for c in document["components"]}
    assert expected, "cyclonedx-py listed no components"
    response = attest(reporter, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"},
                      tar_gz({"sbom.cdx.json": cyclonedx_sbom}))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["results"]["documents"][0]["format"] == "CycloneDX"
    assert body["results"]["documents"][0]["spec_version"] == document["specVersion"]
    assert body["results"]["component_count"] == len(document["components"])
    stored = set(SbomComponent.objects.values_list("name", "version"))
    assert stored == expected
    assert SbomComponent.objects.filter(purl__startswith="pkg:pypi/pip@").exists()


def test_spdx_sbom(reporter, trail):
    response = attest(reporter, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"},
                      json.dumps(SPDX_JSON).encode(), filename="backend.spdx.json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["results"]["documents"][0]["format"] == "SPDX"
    assert body["results"]["documents"][0]["spec_version"] == "2.3"
    assert body["is_compliant"] is True
    component = SbomComponent.objects.get(name="openssl")
    assert component.purl == "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64"


@pytest.mark.parametrize("document, problem", [
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [', "malformed JSON"),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": {"a": 1}}', "components must be a list"),
    (b'{"spdxVersion": "SPDX-2.3", "packages": [{"versionInfo": "1"}]}', "packages[0] has no name"),
])
def test_malformed_sboms_are_400(reporter, trail, document, problem):
    response = attest(reporter, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"},
                      tar_gz({"sbom.json": document}))
    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]
    assert "sbom.json" in response.json()["error"]["message"]


def test_sbom_attestation_without_an_sbom_is_400(reporter, trail):
    response = attest(reporter, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"},
                      tar_gz({"notes.txt": b"hello"}))
    assert response.status_code == 400
    assert "CycloneDX or SPDX" in response.json()["error"]["message"]


def test_sarif_from_bandit_judged_against_the_flow_threshold(reporter, trail, bandit_sarif):
    snyk_summary = {"schema_version": 1, "tool": {"name": "Bandit", "version": "1.9"},
                    "results": [{"high_count": 1, "medium_count": 0, "low_count": 1}]}
    response = attest(reporter, "acme", "backend", trail, "snyk",
                      {"attestation_name": "scan", "snyk_results": snyk_summary},
                      tar_gz({"out.sarif": bandit_sarif}))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["results"]["findings"]["high"] == 1
    assert body["results"]["findings"]["low"] == 1
    assert body["results"]["threshold"] == "high"
    assert body["verification"] == "verified"
    assert body["is_compliant"] is False
    # raise the flow's threshold to critical: the same scan passes
    reporter.put("/api/v2/flows/acme", {"name": "backend", "sarif_threshold": "critical"}, format="json")
    body = attest(reporter, "acme", "backend", trail, "sarif", {"attestation_name": "scan"},
                  bandit_sarif, filename="out.sarif").json()
    assert body["is_compliant"] is True


def test_malformed_sarif_is_400(reporter, trail, bandit_sarif):
    document = json.loads(bandit_sarif)
    document["runs"][0]["results"] = "oops"
    response = attest(reporter, "acme", "backend", trail, "sarif", {"attestation_name": "scan"},
                      tar_gz({"scan.sarif": json.dumps(document).encode()}))
    assert response.status_code == 400
    assert "scan.sarif: runs[0].results must be a list" in response.json()["error"]["message"]
    document["version"] = "1.0.0"
    response = attest(reporter, "acme", "backend", trail, "sarif", {"attestation_name": "scan"},
                      tar_gz({"scan.sarif": json.dumps(document).encode()}))
    assert response.status_code == 400
    assert "2.1.0" in response.json()["error"]["message"]


def test_generic_attestation_compliance_as_given(reporter, trail):
    body = attest(reporter, "acme", "backend", trail, "generic",
                  {"attestation_name": "manual-qa", "is_compliant": False, "user_data": {"ticket": "QA-1"}}).json()
    assert body["is_compliant"] is False
    assert body["user_data"] == {"ticket": "QA-1"}
    response = attest(reporter, "acme", "backend", trail, "generic",
                      {"attestation_name": "manual-qa", "is_compliant": "yes"})
    assert response.status_code == 400
    assert "is_compliant" in response.json()["error"]["message"]


def test_pull_request_needs_an_approver_who_is_not_the_author(reporter, trail):
    pr = {"url": "https://github.com/acme/backend/pull/12", "merge_commit": "c" * 40, "state": "MERGED",
          "author": "alice", "approvers": [{"username": "alice", "state": "APPROVED", "timestamp": 1}]}
    body = attest(reporter, "acme", "backend", trail, "pull_request",
                  {"attestation_name": "pr", "git_provider": "github", "pull_requests": [pr]}).json()
    assert body["is_compliant"] is False
    pr["approvers"].append("bob")
    body = attest(reporter, "acme", "backend", trail, "pull_request",
                  {"attestation_name": "pr", "git_provider": "github", "pull_requests": [pr]}).json()
    assert body["is_compliant"] is True
    assert body["results"]["pull_requests"][0]["independent_approvers"] == ["bob"]
    response = attest(reporter, "acme", "backend", trail, "pull_request",
                      {"attestation_name": "pr", "pull_requests": [{"approvers": []}]})
    assert response.status_code == 400
    assert "pull_requests[0].url" in response.json()["error"]["message"]


def test_bad_data_json_and_unknown_type(reporter, trail):
    response = reporter.post("/api/v2/attestations/acme/backend/trail/build-1/generic",
                             {"data_json": "{not json"}, format="multipart")
    assert response.status_code == 400
    assert "data_json" in response.json()["error"]["fields"]
    response = attest(reporter, "acme", "backend", trail, "nonsense", {"attestation_name": "x"})
    assert response.status_code == 404
    response = attest(reporter, "acme", "backend", trail, "generic",
                      {"attestation_name": "x", "artifact_fingerprint": "ABC"})
    assert response.status_code == 400
    assert "artifact_fingerprint" in response.json()["error"]["fields"]
