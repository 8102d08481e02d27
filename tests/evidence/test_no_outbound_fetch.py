"""No evidence makes csm fetch anything (issue 11): the URLs, schema locations, DTDs and entities inside
JUnit XML, SARIF and SBOM files made by the real tools — rewritten to point at a real counting server on
127.0.0.1 and at local files — and the URLs of attestations, artifacts and trails are parsed, stored and
shown as text or http(s) links, never requested, whatever page, API answer or audit package reads
them."""

import copy
import gzip
import json

import pytest

from tests.evidence.conftest import SERVED_SECRET, attest, begin_trail, make_flow, tar_gz
from tests.evidence.test_attestation_types import SPDX_JSON

pytestmark = pytest.mark.django_db
FP = "5e" * 32
PASSWD = "file:///etc/passwd"


@pytest.fixture
def trail(reporter):
    make_flow(reporter)
    begin_trail(reporter)
    return "build-1"


def _never_answered_with_local_contents(response):
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if body[:2] == b"\x1f\x8b":  # an audit package: look inside
        body = gzip.decompress(body)
    assert SERVED_SECRET.encode() not in body
    assert b"root:x:0:0" not in body  # /etc/passwd


def test_junit_with_external_dtd_schema_location_and_xinclude_fetches_nothing(reporter, trail, counting_server,
                                                                               pytest_junit_xml):
    base, hits = counting_server
    body = pytest_junit_xml.split(b"?>", 1)[-1]  # keep pytest's document, swap the prolog
    pointed = (f'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE testsuites SYSTEM "{base}/junit.dtd">\n'
               .encode() + body.replace(b"<testsuites", f'<testsuites xmlns:xsi="http://www.w3.org/2001/XMLSchema-'
                                        f'instance" xsi:noNamespaceSchemaLocation="{base}/junit.xsd" xmlns:xi='
                                        f'"http://www.w3.org/2001/XInclude"'.encode(), 1)
               .replace(b"</testsuites>", f'<xi:include href="{base}/more.xml" parse="xml"/></testsuites>'.encode()))
    response = attest(reporter, "acme", "backend", trail, "junit", {"attestation_name": "unit"},
                      tar_gz({"report.xml": pointed}))
    assert response.status_code == 201, response.content
    assert response.json()["results"]["totals"]["tests"] == 4  # parsed as ever, nothing pulled in
    assert hits == []


@pytest.mark.parametrize("target", ["{base}/entity", PASSWD])
def test_junit_external_entities_are_refused_without_a_fetch(reporter, trail, counting_server, target):
    base, hits = counting_server
    entity = (f'<?xml version="1.0"?><!DOCTYPE testsuite [<!ENTITY ext SYSTEM "{target.format(base=base)}">]>'
              '<testsuite name="x" tests="1"><testcase name="t">&ext;</testcase></testsuite>').encode()
    response = attest(reporter, "acme", "backend", trail, "junit", {"attestation_name": "unit"},
                      tar_gz({"report.xml": entity}))
    assert response.status_code == 400
    assert "forbidden XML construct" in response.json()["error"]["message"]
    _never_answered_with_local_contents(response)
    assert hits == []


def test_sarif_uris_are_listed_as_text_never_fetched(reporter, trail, counting_server, bandit_sarif):
    base, hits = counting_server
    document = json.loads(bandit_sarif)
    document["$schema"] = f"{base}/sarif-schema.json"
    run = document["runs"][0]
    run["originalUriBaseIds"] = {"SRCROOT": {"uri": f"{base}/src/"}}
    run["tool"]["driver"]["informationUri"] = f"{base}/tool"
    for rule in run["tool"]["driver"].get("rules", []):
        rule["helpUri"] = f"{base}/help"
    locations = [result["locations"][0]["physicalLocation"]["artifactLocation"] for result in run["results"]]
    locations[0]["uri"] = f"{base}/insecure.py"
    locations[-1]["uri"] = PASSWD
    response = attest(reporter, "acme", "backend", trail, "sarif", {"attestation_name": "scan"},
                      tar_gz({"scan.sarif": json.dumps(document).encode()}))
    assert response.status_code == 201, response.content
    listed = {item["location"].rsplit(":", 1)[0] for item in response.json()["results"]["listed"]}
    assert {f"{base}/insecure.py", PASSWD} <= listed
    _never_answered_with_local_contents(response)
    assert hits == []


def test_sbom_references_are_never_fetched(reporter, trail, counting_server, cyclonedx_sbom):
    base, hits = counting_server
    cyclonedx = json.loads(cyclonedx_sbom)
    cyclonedx["$schema"] = f"{base}/bom-1.6.schema.json"
    for component in cyclonedx["components"]:
        component["externalReferences"] = [{"type": "website", "url": f"{base}/pkg/{component['name']}"},
                                           {"type": "bom", "url": PASSWD}]
    cyclonedx.setdefault("externalReferences", []).append({"type": "bom", "url": f"{base}/parent-bom.json"})
    spdx = copy.deepcopy(SPDX_JSON)
    spdx["documentNamespace"] = f"{base}/spdx/backend"
    for package in spdx["packages"]:
        package["downloadLocation"] = f"{base}/download"
        package["externalRefs"].append({"referenceCategory": "OTHER", "referenceType": "url",
                                        "referenceLocator": PASSWD})
    files = {"cdx.json": json.dumps(cyclonedx).encode(), "spdx.json": json.dumps(spdx).encode()}
    response = attest(reporter, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"}, tar_gz(files))
    assert response.status_code == 201, response.content
    assert response.json()["results"]["component_count"] == len(cyclonedx["components"]) + 2
    _never_answered_with_local_contents(response)
    assert hits == []


def test_urls_in_attestations_artifacts_and_trails_are_stored_and_linked_never_fetched(
        org, reporter, trail, counting_server, owner, api):
    base, hits = counting_server
    commit = "a" * 40
    artifact = reporter.post("/api/v2/artifacts/acme/backend", {
        "fingerprint": FP, "filename": "backend:1.0", "git_commit": commit, "trail_name": "build-1",
        "build_url": f"{base}/build", "commit_url": f"{base}/commit", "repo_url": f"{base}/repo",
        "external_urls": {"sbom": f"{base}/sbom.json"}}, format="json")
    assert artifact.status_code == 201, artifact.content
    generic = attest(reporter, "acme", "backend", trail, "generic", {
        "attestation_name": "deploy-check", "artifact_fingerprint": FP, "origin_url": f"{base}/origin",
        "external_urls": {"dashboard": f"{base}/dash", "local": PASSWD}, "user_data": {"url": f"{base}/data"},
        "annotations": {"html_url": f"{base}/html"}, "description": f'<img src="{base}/img">'})
    assert generic.status_code == 201, generic.content
    pull = attest(reporter, "acme", "backend", trail, "pull_request", {
        "attestation_name": "review", "artifact_fingerprint": FP, "git_provider": "github",
        "pull_requests": [{"url": f"{base}/pull/7", "author": "dev", "approvers": ["lead"],
                           "html_url": f"{base}/pull/7/html"}]})
    assert pull.status_code == 201, pull.content
    reads = [
        reporter.get(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}"),
        reporter.get("/api/v2/trails/acme/backend/build-1"),
        reporter.get("/api/v2/attestations/acme/backend/trail/build-1"),
        reporter.get(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}/audit-package"),
    ]
    browser = api(user=owner)
    reads += [browser.get(f"/o/acme/artifacts/{FP}/"), browser.get("/o/acme/flows/backend/trails/build-1/")]
    assert [read.status_code for read in reads] == [200] * len(reads)
    page = reads[4].content.decode()
    assert f'href="{base}/pull/7"' in page and f'href="{base}/build"' in page  # shown as links for people
    assert f'<img src="{base}/img">' not in page
    for read in reads:
        _never_answered_with_local_contents(read)
    assert hits == []


@pytest.mark.parametrize("field,value", [("origin_url", PASSWD), ("origin_url", "javascript:alert(1)")])
def test_non_http_urls_are_refused(reporter, trail, field, value):
    response = attest(reporter, "acme", "backend", trail, "generic", {"attestation_name": "x", field: value})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {field: [f"{field} must be an http(s) URL"]}
    pr = attest(reporter, "acme", "backend", trail, "pull_request", {
        "attestation_name": "review", "pull_requests": [{"url": value, "author": "a", "approvers": ["b"]}]})
    assert pr.status_code == 400
    assert "must be an http(s) URL" in pr.json()["error"]["message"]
