"""A request byte-for-byte as the kosli CLI's Go client writes it, audit packages (contents, manifest
hashes, journal hashes), and the web pages."""

import hashlib
import io
import json
import tarfile

import pytest

from evidence.models import Attestation
from journal.models import JournalLeaf
from tests.evidence.conftest import attest, begin_trail, make_flow, report_artifact, tar_gz

pytestmark = pytest.mark.django_db
FP = hashlib.sha256(b"payments:2.3").hexdigest()
JUNIT = (b'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="0" '
         b'skipped="0" tests="2" time="0.03" timestamp="2026-11-29T05:00:00.123456" hostname="ci">'
         b'<testcase classname="test_x" name="test_a" time="0.001"/><testcase classname="test_x" name="test_b" '
         b'time="0.001"/></testsuite></testsuites>')


def _go_multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    """What Go's mime/multipart writer produces for kosli's createMultipartRequestBody."""
    boundary = "d1b7d4f2c0a9e8b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode())
        out.write(value + b"\r\n")
    for name, (filename, data) in files.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                  "Content-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def test_attestation_exactly_as_the_kosli_cli_sends_it(org, token_for, api):
    token = token_for(org, "member")
    client = api(token=token)
    make_flow(client, name="payments")
    begin_trail(client, flow="payments", name="main-42")
    payload = {  # JunitAttestationPayload marshalled with json.MarshalIndent(..., "", "    ")
        "artifact_fingerprint": FP,
        "git_commit_info": {"sha1": "9f3c" + "0" * 36, "message": "Fix rounding", "author": "Dev <dev@example.com>",
                            "timestamp": 1764390000, "branch": "main",
                            "url": "https://github.com/acme/payments/commit/9f3c"},
        "repo_info": {"url": "https://github.com/acme/payments", "name": "acme/payments", "id": "123",
                      "provider": "github"},
        "attestation_name": "unit-tests",
        "origin_url": "https://github.com/acme/payments/actions/runs/1",
        "user_data": {"runner": "ubuntu-24.04"},
        "annotations": {"suite": "fast"},
        "junit_results": [{"name": "pytest", "failures": 0, "errors": 0, "skipped": 0, "total": 2,
                           "duration": 0.03, "timestamp": 1764392400}],
    }
    body, content_type = _go_multipart({"data_json": json.dumps(payload, indent=4).encode()},
                                       {"attachment_file": ("evidence.tgz", tar_gz({"junit/report.xml": JUNIT}))})
    response = api().generic("POST", "/api/v2/attestations/acme/payments/trail/main-42/junit", body,
                             content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {token}",
                             HTTP_USER_AGENT="Kosli/v2.11.0")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["verification"] == "verified" and data["is_compliant"] is True
    assert data["results"]["totals"]["tests"] == 2
    assert data["annotations"] == {"suite": "fast"}
    assert data["git_commit"] == "9f3c" + "0" * 36
    # the artifact arrives afterwards (kosli attest artifact) and picks the attestation up
    assert report_artifact(client, FP, flow="payments", trail="main-42", name="payments",
                           commit="9f3c" + "0" * 36).status_code == 201
    assert Attestation.objects.get().artifact.fingerprint == FP


def _package(response) -> dict[str, bytes]:
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"].startswith("attachment;")
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content)), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def test_audit_packages_carry_every_file_and_a_manifest_with_hashes(org, token_for, api):
    client = api(token=token_for(org, "member"))
    make_flow(client)
    begin_trail(client)
    report_artifact(client, FP)
    first = attest(client, "acme", "backend", "build-1", "junit", {"attestation_name": "unit-tests",
                   "artifact_fingerprint": FP}, tar_gz({"junit/report.xml": JUNIT, "logs/run.log": b"ok\n"})).json()
    second = attest(client, "acme", "backend", "build-1", "generic", {"attestation_name": "notes"},
                    b"release notes", filename="notes.md").json()

    files = _package(client.get(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}/audit-package"))
    manifest = json.loads(files.pop("manifest.json"))
    assert manifest["subject"] == {"type": "artifact", "id": FP, "flow": "backend"}
    assert set(files) == {f"evidence/{first['id']}-unit-tests/junit/report.xml",
                          f"evidence/{first['id']}-unit-tests/logs/run.log"}
    for entry in manifest["files"]:
        assert hashlib.sha256(files[entry["path"]]).hexdigest() == entry["sha256"]
        assert len(files[entry["path"]]) == entry["size"]
    [attestation] = manifest["attestations"]
    leaf = JournalLeaf.objects.get(org=org, index=attestation["journal"]["index"])
    assert attestation["journal"]["leaf_hash"] == leaf.leaf_hash and leaf.kind == "attestation"
    [artifact] = manifest["artifacts"]
    assert JournalLeaf.objects.get(org=org, index=artifact["journal"]["index"]).leaf_hash == \
        artifact["journal"]["leaf_hash"]
    assert manifest["compliance"]["provenance"] is True

    trail_files = _package(client.get("/api/v2/trails/acme/backend/build-1/audit-package"))
    assert f"evidence/{second['id']}-notes/notes.md" in trail_files
    assert len(json.loads(trail_files["manifest.json"])["attestations"]) == 2

    one = _package(client.get(f"/api/v2/attestations/acme/id/{second['id']}/audit-package"))
    assert one[f"evidence/{second['id']}-notes/notes.md"] == b"release notes"


def test_audit_package_of_another_org_is_404(org, other_org, token_for, api):
    client = api(token=token_for(org, "member"))
    make_flow(client)
    begin_trail(client)
    body = attest(client, "acme", "backend", "build-1", "generic", {"attestation_name": "x"}).json()
    outsider = api(token=token_for(other_org, "admin"))
    assert outsider.get(f"/api/v2/attestations/acme/id/{body['id']}/audit-package").status_code == 404
    assert outsider.get(f"/api/v2/attestations/{other_org.slug}/id/{body['id']}").status_code == 404
    assert outsider.get("/api/v2/trails/acme/backend/build-1/audit-package").status_code == 404


def test_web_pages(org, owner, token_for, api, make_user, other_org):
    client = api(token=token_for(org, "member"))
    make_flow(client, template={"trail": [{"name": "review"}],
                                "artifacts": [{"name": "backend-image", "attestations": [{"name": "sbom"}]}]})
    begin_trail(client)
    report_artifact(client, FP)
    body = attest(client, "acme", "backend", "build-1", "junit", {"attestation_name": "unit-tests",
                  "artifact_fingerprint": FP}, tar_gz({"report.xml": JUNIT})).json()
    browser = api(user=owner)
    page = browser.get("/o/acme/flows/")
    assert page.status_code == 200 and b"backend" in page.content
    page = browser.get("/o/acme/flows/backend/")
    assert b"build-1" in page.content and b"missing attestation review" in page.content
    page = browser.get("/o/acme/flows/backend/trails/build-1/")
    assert b"unit-tests" in page.content and b"non-compliant" in page.content
    page = browser.get(f"/o/acme/artifacts/{FP}/")
    assert page.status_code == 200
    assert b"2 tests" in page.content and b"missing attestation sbom" in page.content
    assert b"https://ci.example.com/build/1" in page.content
    page = browser.get(f"/o/acme/artifacts/{'c' * 64}/")
    assert b"No provenance" in page.content
    sha = body["evidence"][0]["sha256"]
    page = browser.get(f"/o/acme/evidence/{sha}/")
    assert sha.encode() in page.content and b"report.xml" in page.content
    stranger = api(user=other_org.memberships.first().user)
    assert stranger.get("/o/acme/flows/").status_code == 404
    assert stranger.get(f"/o/acme/evidence/{sha}/").status_code == 404
