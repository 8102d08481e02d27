"""Audit packages carry ``journal_proofs``: a signed checkpoint of the org's journal and an inclusion
proof of every record the manifest names (artifacts, attestations, evidence files), so the package is
checked offline (csm-verify package) with the verifier key alone. Tampered bundles fail the same check."""

import hashlib
import io
import json
import subprocess
import sys
import tarfile

import pytest

from audit.context import AuditContext
from evidence import packages
from evidence import services as evidence
from evidence.models import Attestation
from journal.selectors import entry
from journal.signing import current_signer
from tests.evidence.conftest import attest, begin_trail, make_flow, report_artifact, tar_gz
from tests.proof_bundles import bundle_problems, leaf_bytes_match, tampered_copies

pytestmark = pytest.mark.django_db
FP = hashlib.sha256(b"payments:2.4").hexdigest()
JUNIT = (b'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="0" '
         b'skipped="0" tests="1" time="0.01" timestamp="2026-11-29T05:00:00" hostname="ci">'
         b'<testcase classname="test_x" name="test_a" time="0.001"/></testsuite></testsuites>')


def manifest_of(response) -> dict:
    assert response.status_code == 200, response.content
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content)), mode="r:gz") as archive:
        return json.loads(archive.extractfile("manifest.json").read())


def journal_records(manifest: dict) -> list[dict]:
    """Every ``journal`` entry the manifest holds."""
    records = [*manifest["artifacts"], *manifest["attestations"], *manifest["files"]]
    return [record["journal"] for record in records if record["journal"]]


def cited(manifest: dict) -> dict[int, str]:
    return {record["index"]: record["leaf_hash"] for record in journal_records(manifest)}


@pytest.fixture
def trail(org, token_for, api):
    """A trail with an artifact, a junit attestation with two evidence files and a generic one with one."""
    client = api(token=token_for(org, "member"))
    make_flow(client)
    begin_trail(client)
    assert report_artifact(client, FP).status_code == 201
    first = attest(client, "acme", "backend", "build-1", "junit", {"attestation_name": "unit-tests",
                   "artifact_fingerprint": FP}, tar_gz({"junit/report.xml": JUNIT, "logs/run.log": b"ok\n"}))
    second = attest(client, "acme", "backend", "build-1", "generic", {"attestation_name": "notes"}, b"release notes",
                    filename="notes.md")
    assert first.status_code == second.status_code == 201, (first.content, second.content)
    return client, second.json()["id"]


def test_every_package_proves_every_record_it_names(org, trail):
    client, attestation_id = trail
    verifier = current_signer().verifier
    for url in (f"/api/v2/artifacts/acme/backend/fingerprint/{FP}/audit-package",
                "/api/v2/trails/acme/backend/build-1/audit-package",
                f"/api/v2/attestations/acme/id/{attestation_id}/audit-package"):
        manifest = manifest_of(client.get(url))
        records = journal_records(manifest)
        assert records, url
        assert all(record["merkle_index"] == record["index"] - 1 for record in records)
        bundle = manifest["journal_proofs"]
        assert bundle_problems(bundle, verifier, cited(manifest)) == [], url
        assert sorted(p["journal_index"] for p in bundle["proofs"]) == sorted(cited(manifest))
        assert all(leaf_bytes_match(org, index, leaf_hash) for index, leaf_hash in cited(manifest).items())
    # each evidence file's proven leaf commits to the SHA-256 the manifest gives for it
    for item in manifest["files"]:
        leaf = json.loads(entry(org, item["journal"]["merkle_index"]))
        assert leaf["kind"] == "evidence_file" and leaf["data"]["sha256"] == item["sha256"]
    trail_manifest = manifest_of(client.get("/api/v2/trails/acme/backend/build-1/audit-package"))
    # the artifact, both attestations and the three evidence files are each proven
    assert len(trail_manifest["journal_proofs"]["proofs"]) == len(cited(trail_manifest)) >= 3
    assert {len(trail_manifest["artifacts"]), len(trail_manifest["attestations"])} == {1, 2}


def test_a_tampered_package_bundle_fails_verification(org, trail):
    client, _ = trail
    manifest = manifest_of(client.get("/api/v2/trails/acme/backend/build-1/audit-package"))
    bundle, records = manifest["journal_proofs"], cited(manifest)
    verifier = current_signer().verifier
    assert bundle_problems(bundle, verifier, records) == []
    for what, changed in tampered_copies(bundle).items():
        assert bundle_problems(changed, verifier, records), f"{what} was not detected"
    index = max(records)
    assert bundle_problems(bundle, verifier, {**records, index: "ff" * 32}), "a changed record was not detected"


def test_a_record_committed_after_the_first_checkpoint_is_still_proven(org, trail):
    """An attestation committed while the package is being built (after its first checkpoint) is in the
    manifest, so the package carries a later checkpoint that covers it."""
    flow = Attestation.objects.get(name="notes").flow

    def attestations():
        yield from Attestation.objects.for_org(org).select_related("flow", "trail", "artifact", "leaf").order_by("id")
        late = evidence.create_attestation(AuditContext.system("ci"), org, flow, "build-1", "generic",
                                           {"attestation_name": "late", "is_compliant": True})
        yield Attestation.objects.select_related("flow", "trail", "artifact", "leaf").get(pk=late.pk)

    handle = packages.build_package(org, {"type": "trail", "id": "build-1", "flow": "backend"}, attestations())
    with tarfile.open(fileobj=handle, mode="r:gz") as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())
    late_entry = next(a for a in manifest["attestations"] if a["name"] == "late")
    bundle = manifest["journal_proofs"]
    assert late_entry["journal"]["index"] <= bundle["tree_size"]
    assert bundle_problems(bundle, current_signer().verifier, cited(manifest)) == []


def test_csm_verify_proves_a_downloaded_package_offline(org, trail, tmp_path):
    """The real csm-verify, as a separate process with only the package and the pinned key, checks every
    file's bytes and every record's inclusion proof; a package whose file bytes changed fails."""
    client, _ = trail
    response = client.get("/api/v2/trails/acme/backend/build-1/audit-package")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    (tmp_path / "package.tar.gz").write_bytes(body)
    key = str(current_signer().verifier)
    done = subprocess.run([sys.executable, "-m", "csm_agent.verify", "package", str(tmp_path / "package.tar.gz"),
                           "--key", key], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    # the same package with one evidence file's bytes changed
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as source, \
            tarfile.open(tmp_path / "changed.tar.gz", mode="w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.endswith("notes.md"):
                data = b"release notes, edited"
                member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    changed = subprocess.run([sys.executable, "-m", "csm_agent.verify", "package", str(tmp_path / "changed.tar.gz"),
                              "--key", key], capture_output=True, text=True, timeout=120)
    assert changed.returncode == 1 and "notes.md" in changed.stdout + changed.stderr
