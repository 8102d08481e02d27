"""Evidence files: limits (413), zip bombs, path traversal, safe downloads, per-org dedup, verification of
stored bytes on every read."""

import hashlib
import io
import tarfile

import pytest

from evidence.models import EvidenceFile
from tests.evidence.conftest import attest, begin_trail, make_flow, tar_gz

pytestmark = pytest.mark.django_db

HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


@pytest.fixture
def trail(reporter):
    make_flow(reporter)
    begin_trail(reporter)
    return "build-1"


def _generic(client, attachment, filename="evidence.tgz", org="acme", name="evidence"):
    return attest(client, org, "backend", "build-1", "generic", {"attestation_name": name}, attachment, filename)


def test_file_hash_is_computed_on_upload_and_listed(reporter, trail):
    body = _generic(reporter, b"release notes\n", filename="notes.txt").json()
    assert body["evidence"][0]["sha256"] == hashlib.sha256(b"release notes\n").hexdigest()
    assert body["evidence"][0]["name"] == "notes.txt"
    info = reporter.get(f"/api/v2/evidence/acme/{body['evidence'][0]['sha256']}").json()
    assert info["size"] == 14 and info["attestations"] == [{"id": body["id"], "name": "notes.txt"}]


def test_per_file_limit_is_413(reporter, trail, settings):
    settings.CSM_EVIDENCE_MAX_FILE_BYTES = 1000
    response = _generic(reporter, b"x" * 2000, filename="big.bin")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    response = _generic(reporter, tar_gz({"inner.bin": b"\0" * 5000}))
    assert response.status_code == 413
    assert "inner.bin" in response.json()["error"]["message"]
    assert EvidenceFile.objects.count() == 0


def test_per_request_limit_is_413(reporter, trail, settings):
    settings.CSM_EVIDENCE_MAX_REQUEST_BYTES = 5000
    response = _generic(reporter, b"y" * 6000, filename="big.bin")
    assert response.status_code == 413
    assert "per request" in response.json()["error"]["message"] or "request body" in response.json()["error"]["message"]


def test_zip_bomb_is_rejected_without_inflating_it(reporter, trail, settings):
    settings.CSM_EVIDENCE_MAX_EXPANDED_BYTES = 10 * 1024 * 1024
    settings.CSM_EVIDENCE_MAX_FILE_BYTES = 100 * 1024 * 1024
    bomb = tar_gz({f"layer{i}.bin": b"\0" * (8 * 1024 * 1024) for i in range(3)})
    assert len(bomb) < 200_000  # 24 MiB of zeros in a small upload
    response = _generic(reporter, bomb)
    assert response.status_code == 413
    assert "expands to more than" in response.json()["error"]["message"]
    assert EvidenceFile.objects.count() == 0


def test_too_many_entries_is_413(reporter, trail, settings):
    settings.CSM_EVIDENCE_MAX_ARCHIVE_ENTRIES = 5
    response = _generic(reporter, tar_gz({f"f{i}.txt": b"x" for i in range(6)}))
    assert response.status_code == 413
    assert "more than 5 entries" in response.json()["error"]["message"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/cron.d/evil", "reports/../../x", "C:/windows/x"])
def test_path_traversal_names_are_400(reporter, trail, name):
    response = _generic(reporter, tar_gz({"ok.txt": b"fine", name: b"evil"}))
    assert response.status_code == 400
    assert "path traversal" in response.json()["error"]["message"]
    assert EvidenceFile.objects.count() == 0


def test_links_in_archives_are_400(reporter, trail):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("shadow")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        archive.addfile(info)
    response = _generic(reporter, buffer.getvalue())
    assert response.status_code == 400
    assert "link" in response.json()["error"]["message"]


def test_archive_made_by_tar_of_a_directory(reporter, trail, tmp_path):
    import subprocess

    (tmp_path / "results" / "nested").mkdir(parents=True)
    (tmp_path / "results" / "nested" / "a.txt").write_bytes(b"a")
    (tmp_path / "results" / "b.txt").write_bytes(b"b")
    archive = tmp_path / "evidence.tgz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(tmp_path / "results"), "."], check=True)
    body = _generic(reporter, archive.read_bytes()).json()
    assert sorted(e["name"] for e in body["evidence"]) == ["b.txt", "nested/a.txt"]


def test_names_are_sanitized(reporter, trail):
    body = _generic(reporter, tar_gz({"./reports/my report<script>.xml": b"<a/>"})).json()
    assert [e["name"] for e in body["evidence"]] == ["reports/my_report_script_.xml"]


def test_html_is_served_as_an_attachment_never_inline(reporter, trail, owner, api):
    body = _generic(reporter, HTML, filename="report.html").json()
    sha = body["evidence"][0]["sha256"]
    response = reporter.get(f"/api/v2/evidence/acme/{sha}/download")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="report.html"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == HTML
    web = api(user=owner).get(f"/o/acme/evidence/{sha}/download/")
    assert web.status_code == 200
    assert web["Content-Disposition"].startswith("attachment;")
    assert web["Content-Type"] == "application/octet-stream"


def test_dedup_within_an_org_but_never_across_orgs(reporter, trail, other_org, api, token_for, evidence_root, org):
    first = _generic(reporter, b"same bytes", filename="a.txt").json()
    second = _generic(reporter, b"same bytes", filename="b.txt", name="again").json()
    assert first["evidence"][0]["sha256"] == second["evidence"][0]["sha256"]
    assert EvidenceFile.objects.filter(org=org).count() == 1
    outsider = api(token=token_for(other_org, "member"))
    make_flow(outsider, org=other_org.slug)
    begin_trail(outsider, org=other_org.slug)
    third = _generic(outsider, b"same bytes", filename="c.txt", org=other_org.slug).json()
    sha = third["evidence"][0]["sha256"]
    assert EvidenceFile.objects.filter(sha256=sha).count() == 2
    stored = sorted(p.relative_to(evidence_root).as_posix() for p in evidence_root.rglob(sha))
    assert stored == sorted([f"{org.pk}/{sha[:2]}/{sha}", f"{other_org.pk}/{sha[:2]}/{sha}"])
    # each org reaches only its own copy
    assert outsider.get(f"/api/v2/evidence/acme/{sha}/download").status_code == 404
    assert reporter.get(f"/api/v2/evidence/{other_org.slug}/{sha}").status_code == 404


def test_corrupted_stored_file_is_never_served(reporter, trail, evidence_root, org):
    body = _generic(reporter, b"the real evidence", filename="evidence.txt").json()
    sha = body["evidence"][0]["sha256"]
    (evidence_root / str(org.pk) / sha[:2] / sha).write_bytes(b"tampered evidence")
    response = reporter.get(f"/api/v2/evidence/acme/{sha}/download")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "evidence_corrupted"
    assert b"tampered" not in response.content
    package = reporter.get(f"/api/v2/attestations/acme/id/{body['id']}/audit-package")
    assert package.status_code == 500
    (evidence_root / str(org.pk) / sha[:2] / sha).unlink()
    assert reporter.get(f"/api/v2/evidence/acme/{sha}/download").json()["error"]["code"] == "evidence_corrupted"
