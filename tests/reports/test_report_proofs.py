"""Every report carries a proof bundle an auditor checks offline: the JSON export's ``integrity.proofs``
holds a signed checkpoint of the org's journal and an inclusion proof of every cited record; the PDF
prints the checkpoint, its key and how to verify, and embeds the JSON export byte for byte as
``report.json``. Checked the way csm-verify does (signature by the pinned key, proofs to the signed
root), and tampered bundles must fail the same check."""

import hashlib
import io
import json
import subprocess
import sys
import time

import pytest
from pypdf import PdfReader

from journal.models import JournalCheckpoint, JournalLeaf
from journal.signing import current_signer
from tenants.choices import Role
from tests.proof_bundles import bundle_problems, leaf_bytes_match, tampered_copies
from tests.reports.conftest import assert_contains, pdf_text
from tests.reports.test_kinds import WEB, report_range, world  # noqa: F401 - the realistic-history fixture

pytestmark = pytest.mark.django_db


def exported(report) -> dict:
    return json.loads(bytes(report.output.data_json))


def cited_leaves(data: dict) -> dict[int, str]:
    return {index: leaf_hash for _kind, index, leaf_hash, _label in data["integrity"]["cited"]}


def embedded_json(pdf: bytes) -> bytes:
    attachments = PdfReader(io.BytesIO(pdf)).attachments
    assert list(attachments) == ["report.json"], list(attachments)
    [content] = attachments["report.json"]
    return content


def assert_verifies(org, data: dict) -> dict:
    """The report's proof bundle verifies offline, covers the report's journal position, and each cited
    leaf hash is the hash of the journal's stored bytes for that record."""
    bundle = data["integrity"]["proofs"]
    cited = cited_leaves(data)
    assert bundle["format"] == "csm-journal-proofs/1"
    assert bundle_problems(bundle, current_signer().verifier, cited) == []
    assert sorted(p["journal_index"] for p in bundle["proofs"]) == sorted(cited)
    position = data["integrity"]["journal"]
    assert position["last_index"] == bundle["tree_size"] and max(cited, default=0) <= bundle["tree_size"]
    assert position["last_hash"] == JournalLeaf.objects.get(org=org, index=bundle["tree_size"]).leaf_hash
    assert all(leaf_bytes_match(org, index, leaf_hash) for index, leaf_hash in cited.items())
    return bundle


@pytest.mark.parametrize("kind", ["environment", "artifact", "org", "audit"])
def test_every_kind_of_report_embeds_proofs_of_every_cited_record(kind, world, org, owner, generate):  # noqa: F811
    params = {"environment": {"environment": "production", **report_range()}, "artifact": {"fingerprint": WEB},
              "org": report_range(), "audit": {"from": "2000-01-01", "to": "2100-01-01"}}[kind]
    report = generate(org, kind, user=owner, **params)
    assert report.status == "done", report.error
    data = exported(report)
    bundle = assert_verifies(org, data)
    if kind != "org":  # the org summary shows figures and charts, not individual records
        assert len(bundle["proofs"]) == data["integrity"]["cited_count"] >= 3
    # the report's own leaf (appended when it was stored) comes after the checkpoint it cites
    assert report.output.leaf.index == bundle["tree_size"] + 1
    assert JournalCheckpoint.objects.filter(org=org, size=bundle["tree_size"]).exists()


def test_a_tampered_proof_bundle_fails_verification(world, org, owner, generate):  # noqa: F811
    report = generate(org, "environment", user=owner, environment="production", **report_range())
    data = exported(report)
    bundle, cited = data["integrity"]["proofs"], cited_leaves(data)
    verifier = current_signer().verifier
    for what, changed in tampered_copies(bundle).items():
        assert bundle_problems(changed, verifier, cited), f"{what} was not detected"
    # a cited record whose content changed (its leaf hash differs from the one proven)
    index = next(iter(cited))
    assert bundle_problems(bundle, verifier, {**cited, index: "00" * 32})
    # another key (an attacker's, or a pinned key of another server) does not verify the checkpoint
    from journal.notes import generate_signer

    assert bundle_problems(bundle, generate_signer(verifier.name).verifier, cited)


def test_the_pdf_prints_the_checkpoint_and_embeds_the_json_export(world, org, owner, generate):  # noqa: F811
    report = generate(org, "artifact", user=owner, fingerprint=WEB)
    pdf, content = bytes(report.output.pdf), bytes(report.output.data_json)
    attached = embedded_json(pdf)
    assert attached == content
    assert hashlib.sha256(attached).hexdigest() == report.output.data_sha256
    bundle = json.loads(attached)["integrity"]["proofs"]
    assert_verifies(org, json.loads(attached))
    text = pdf_text(report)
    key = str(current_signer().verifier)
    note_lines = [line for line in bundle["checkpoint"].split("\n") if line]
    assert_contains(text, "Signed checkpoint", bundle["origin"], bundle["root_hash"],
                    "How to verify offline", "csm-verify report report.json --key", report.output.data_sha256,
                    f"Inclusion proofs {len(bundle['proofs'])}")
    # pdftotext joins a line broken after a hyphen without it (the key name has hyphens)
    assert_contains(text.replace("-", ""), *[line.replace("-", "") for line in [key, *note_lines]])


def test_the_embedded_json_is_the_download_byte_for_byte(world, org, owner, generate, api):  # noqa: F811
    report = generate(org, "audit", user=owner, **{"from": "2000-01-01", "to": "2100-01-01"})
    client = api(user=owner)
    base = f"/api/v2/orgs/{org.slug}/reports/{report.pk}"
    pdf, download = client.get(f"{base}/pdf"), client.get(f"{base}/json")
    assert pdf.status_code == download.status_code == 200
    pdf_bytes = b"".join(pdf.streaming_content) if pdf.streaming else pdf.content
    json_bytes = b"".join(download.streaming_content) if download.streaming else download.content
    assert embedded_json(pdf_bytes) == json_bytes
    assert hashlib.sha256(json_bytes).hexdigest() == client.get(base).json()["data_sha256"]


@pytest.mark.django_db(transaction=True)
def test_a_report_from_a_real_worker_verifies_offline(celery_worker, org, api, token_for):
    """Through the API and a real worker (the checkpoint published by the worker's process): the PDF
    downloaded embeds the JSON downloaded, whose bundle verifies with the published key."""
    client = api(token=token_for(org, Role.ADMIN))
    response = client.post(f"/api/v2/orgs/{org.slug}/reports", {"kind": "audit", "from": "2000-01-01",
                                                                 "to": "2100-01-01"}, format="json")
    assert response.status_code == 202, response.json()
    base = f"/api/v2/orgs/{org.slug}/reports/{response.json()['id']}"
    deadline = time.monotonic() + 120  # a bound on waiting, not a timing assertion
    while client.get(base).json()["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert client.get(base).json()["status"] == "done"
    pdf = client.get(f"{base}/pdf")
    download = client.get(f"{base}/json")
    json_bytes = b"".join(download.streaming_content) if download.streaming else download.content
    pdf_bytes = b"".join(pdf.streaming_content) if pdf.streaming else pdf.content
    assert embedded_json(pdf_bytes) == json_bytes
    data = json.loads(json_bytes)
    assert_verifies(org, data)
    assert data["integrity"]["cited_count"] >= 1


def csm_verify(*args) -> subprocess.CompletedProcess:
    """The auditor's tool as a separate process: the agent package's csm-verify, no server code."""
    return subprocess.run([sys.executable, "-m", "csm_agent.verify", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_an_auditor_with_the_key_and_the_downloaded_files_verifies_them_with_csm_verify(
        world, org, owner, generate, api, tmp_path):  # noqa: F811
    """Issue 14's "done when": only the public key, a downloaded report and csm-verify prove that every
    record the report cites is in the org's log; a changed citation is a failure naming the record."""
    report = generate(org, "environment", user=owner, environment="production", **report_range())
    client = api(user=owner)
    base = f"/api/v2/orgs/{org.slug}/reports/{report.pk}"
    pdf, download = client.get(f"{base}/pdf"), client.get(f"{base}/json")
    (tmp_path / "report.pdf").write_bytes(b"".join(pdf.streaming_content) if pdf.streaming else pdf.content)
    json_bytes = b"".join(download.streaming_content) if download.streaming else download.content
    (tmp_path / "report.json").write_bytes(json_bytes)
    key = client.get(f"/api/v2/journal/{org.slug}/key").content.decode().splitlines()[0]
    assert key == str(current_signer().verifier)
    cited = json.loads(json_bytes)["integrity"]["cited"]
    for name in ("report.pdf", "report.json"):
        done = csm_verify("report", tmp_path / name, "--key", key)
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        assert str(len(cited)) in done.stdout
    data = json.loads(json_bytes)
    kind, index, _leaf, label = data["integrity"]["cited"][0]
    data["integrity"]["cited"][0][2] = "ab" * 32  # a record the report claims that the log does not hold
    (tmp_path / "forged.json").write_text(json.dumps(data))
    forged = csm_verify("report", tmp_path / "forged.json", "--key", key)
    assert forged.returncode == 1 and f"#{index}" in forged.stdout + forged.stderr
    from journal.notes import generate_signer

    stranger = str(generate_signer("attacker.example/journal").verifier)
    assert csm_verify("report", tmp_path / "report.json", "--key", stranger).returncode == 1
