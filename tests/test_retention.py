"""Retention (docs/operations.md, "Retention"): per-org settings drop stored report bodies and evidence files
after N days; snapshots, entries, attestations, hashes and journal leaves stay, and everything that used the
dropped data says so (410 Gone, "removed by retention") while verify_audit and proof bundles keep passing."""

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from csm.celery import app
from evidence.models import Attestation, EvidenceFile
from evidence.retention import apply_all_retention, apply_retention
from evidence.tasks import apply_retention_task
from journal.signing import current_signer
from snapshots.models import Report
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tenants.services import set_retention
from tests.evidence.conftest import attest, begin_trail, make_flow, tar_gz
from tests.proof_bundles import bundle_problems, leaf_bytes_match
from tests.reports.conftest import generate  # noqa: F401 - the in-process report fixture
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db
CTX = AuditContext.system("test")


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    root = tmp_path / "evidence-store"
    settings.CSM_EVIDENCE_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


def retention_events(org):
    return list(AuditEvent.objects.filter(org=org, action=AuditAction.RETENTION_APPLIED).order_by("seq"))


def accept(org, env, body, *, age_days=0, key="", ingest=True, capture=None):
    raw = json.dumps(body).encode()
    with capture(execute=False):
        report, _ = accept_report(CTX, env, env.type, raw, key,
                                  received_at=timezone.now() - timedelta(days=age_days) if age_days else None)
    if ingest:
        ingest_report(report.pk)
    return report


# --- settings -----------------------------------------------------------------------------------------------

def test_owners_and_admins_set_retention_through_the_api_with_an_audit_event(org, api, owner, member_of):
    client = api(user=owner)
    assert client.get("/api/v2/orgs/acme").json()["report_body_retention_days"] is None
    response = client.patch("/api/v2/orgs/acme", {"report_body_retention_days": 30}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["report_body_retention_days"] == 30
    assert response.json()["evidence_file_retention_days"] is None
    event = AuditEvent.objects.filter(org=org, action=AuditAction.ORG_RETENTION_CHANGED).get()
    assert event.before == {"report_body_retention_days": None}
    assert event.after == {"report_body_retention_days": 30}
    admin = api(user=member_of(org, Role.ADMIN))
    assert admin.patch("/api/v2/orgs/acme", {"evidence_file_retention_days": 365, "report_body_retention_days": None},
                       format="json").status_code == 200
    org.refresh_from_db()
    assert (org.report_body_retention_days, org.evidence_file_retention_days) == (None, 365)
    # the same values again change nothing and record nothing
    assert admin.patch("/api/v2/orgs/acme", {"evidence_file_retention_days": 365}, format="json").status_code == 200
    assert AuditEvent.objects.filter(org=org, action=AuditAction.ORG_RETENTION_CHANGED).count() == 2
    member = api(user=member_of(org, Role.MEMBER))
    assert member.patch("/api/v2/orgs/acme", {"evidence_file_retention_days": 1}, format="json").status_code == 403


@pytest.mark.parametrize("value", [0, -5, 3651, "soon", 1.5, True])
def test_a_bad_retention_is_a_400_naming_the_field(org, api, owner, value):
    response = api(user=owner).patch("/api/v2/orgs/acme", {"evidence_file_retention_days": value}, format="json")
    assert response.status_code == 400, response.content
    assert "evidence_file_retention_days" in response.json()["error"]["fields"]
    org.refresh_from_db()
    assert org.evidence_file_retention_days is None
    assert not AuditEvent.objects.filter(org=org, action=AuditAction.ORG_RETENTION_CHANGED).exists()


def test_a_bad_name_with_a_good_retention_changes_nothing(org, api, owner):
    response = api(user=owner).patch("/api/v2/orgs/acme", {"name": " ", "report_body_retention_days": 9},
                                     format="json")
    assert response.status_code == 400
    org.refresh_from_db()
    assert org.report_body_retention_days is None


def test_the_settings_page_edits_retention(org, client, owner, member_of):
    client.force_login(owner)
    page = client.get("/o/acme/settings/")
    assert page.status_code == 200 and b'data-testid="retention"' in page.content
    response = client.post("/o/acme/settings/retention/", {"report_body_retention_days": "90",
                                                            "evidence_file_retention_days": ""})
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.report_body_retention_days, org.evidence_file_retention_days) == (90, None)
    response = client.post("/o/acme/settings/retention/", {"report_body_retention_days": "0",
                                                            "evidence_file_retention_days": ""}, follow=True)
    assert b"Drop report bodies after (days)" in response.content and b"from 1 to 3650" in response.content
    org.refresh_from_db()
    assert org.report_body_retention_days == 90
    client.force_login(member_of(org, Role.READER))
    page = client.get("/o/acme/settings/")
    assert b"dropped after 90 days" in page.content and b"Save retention" not in page.content
    assert client.post("/o/acme/settings/retention/", {"report_body_retention_days": "1"}).status_code == 403


# --- the task -----------------------------------------------------------------------------------------------

@pytest.fixture
def history(org, other_org, api, token_for, django_capture_on_commit_callbacks):
    """In acme: two old ingested reports, an old pending one (in another environment), a recent one; an old
    attestation with two files, one of them attached again by a recent attestation. In globex: an old ingested
    report (no retention)."""
    capture = django_capture_on_commit_callbacks
    env, _ = create_or_update_environment(CTX, org, "prod", "server")
    other_env, _ = create_or_update_environment(CTX, other_org, "prod", "server")
    # its own environment: ingesting a later report of "prod" would drain it first
    quiet_env, _ = create_or_update_environment(CTX, org, "staging", "server")
    reports = {
        "old": accept(org, env, server_report(fp(1)), age_days=100, capture=capture),
        "old-heartbeat": accept(org, env, server_report(fp(1)), age_days=99, key="k-1", capture=capture),
        "old-pending": accept(org, quiet_env, server_report(fp(2)), age_days=98, ingest=False, capture=capture),
        "other-org": accept(other_org, other_env, server_report(fp(3)), age_days=100, capture=capture),
    }
    client = api(token=token_for(org, Role.MEMBER))
    make_flow(client)
    begin_trail(client)
    old = attest(client, "acme", "backend", "build-1", "generic", {"attestation_name": "old"},
                 tar_gz({"only-old.txt": b"old only\n", "shared.txt": b"shared\n"}))
    assert old.status_code == 201, old.content
    between = timezone.now()
    recent = attest(client, "acme", "backend", "build-1", "generic", {"attestation_name": "recent"},
                    b"shared\n", filename="shared.txt")
    assert recent.status_code == 201, recent.content
    reports["recent"] = accept(org, env, server_report(fp(4)), capture=capture)
    return {"reports": reports, "env": env, "client": client, "between": between,
            "old_attestation": old.json()["id"]}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_retention_drops_exactly_the_old_ingested_bodies_and_the_old_files(org, other_org, history, evidence_root):
    set_retention(CTX, org, report_body_retention_days=30, evidence_file_retention_days=30)
    set_retention(CTX, other_org, evidence_file_retention_days=1)
    reports = history["reports"]
    before = {name: (r.payload_sha256, r.payload_bytes) for name, r in reports.items()}
    only_old = EvidenceFile.objects.get(org=org, sha256=sha(b"old only\n"))
    blob = evidence_root / only_old.storage_name
    assert blob.exists()
    # "now" is 30 days after the moment between the two attestations: the old one is past the cutoff
    now = history["between"] + timedelta(days=30)

    summary = apply_retention(org.pk, now=now)

    assert summary["report_bodies"]["dropped"] == 2 and summary["evidence_files"]["dropped"] == 1
    assert summary["report_bodies"]["bytes_freed"] == before["old"][1] + before["old-heartbeat"][1]
    assert summary["evidence_files"]["bytes_freed"] == len(b"old only\n")
    for name, report in reports.items():
        report = Report.objects.get(pk=report.pk)
        assert (report.payload_sha256, report.payload_bytes) == before[name]  # always kept
        if name in ("old", "old-heartbeat"):
            assert bytes(report.payload) == b"" and report.payload_dropped_at == now
        else:  # pending (a worker still needs it), recent, another org's
            assert bytes(report.payload) != b"" and report.payload_dropped_at is None, name
    only_old.refresh_from_db()
    assert only_old.dropped_at == now and not blob.exists()
    assert only_old.sha256 == sha(b"old only\n") and only_old.size == 9 and only_old.original_name == "only-old.txt"
    shared = EvidenceFile.objects.get(org=org, sha256=sha(b"shared\n"))
    assert shared.dropped_at is None and (evidence_root / shared.storage_name).exists()  # a recent attestation uses it
    # one summary event, not one per row
    [event] = retention_events(org)
    assert event.actor_label == "retention" and event.after["report_bodies"]["dropped"] == 2
    # idempotent: a second run drops nothing and records nothing
    again = apply_retention(org.pk, now=now)
    assert again["report_bodies"]["dropped"] == again["evidence_files"]["dropped"] == 0
    assert len(retention_events(org)) == 1
    # the other org had no report retention: its old body stays; its files are none
    assert apply_retention(other_org.pk, now=now) == {"evidence_files": {
        "days": 1, "cutoff": now - timedelta(days=1), "dropped": 0, "bytes_freed": 0}}
    assert retention_events(other_org) == []


def test_the_pending_body_is_dropped_only_once_ingested(org, history):
    set_retention(CTX, org, report_body_retention_days=30)
    pending = history["reports"]["old-pending"]
    apply_retention(org.pk)
    assert Report.objects.get(pk=pending.pk).payload_dropped_at is None
    ingest_report(pending.pk)
    apply_retention(org.pk)
    assert Report.objects.get(pk=pending.pk).payload_dropped_at is not None


def test_small_batches_drop_everything_in_several_transactions(org, history, settings):
    settings.CSM_RETENTION_BATCH_SIZE = 1
    settings.CSM_RETENTION_BATCH_BYTES = 1
    set_retention(CTX, org, report_body_retention_days=30, evidence_file_retention_days=30)
    summary = apply_retention(org.pk, now=history["between"] + timedelta(days=30))
    assert summary["report_bodies"]["dropped"] == 2 and summary["evidence_files"]["dropped"] == 1


def test_everything_that_used_the_dropped_data_says_so(org, owner, client, history, api, token_for):
    set_retention(CTX, org, report_body_retention_days=30, evidence_file_retention_days=30)
    apply_retention(org.pk, now=history["between"] + timedelta(days=30))
    digest = sha(b"old only\n")
    agent = history["client"]
    # API: 410 Gone with a JSON error body naming the date and the kept SHA-256; the metadata answers
    response = agent.get(f"/api/v2/evidence/acme/{digest}/download")
    assert response.status_code == 410, response.content
    error = response.json()["error"]
    assert error["code"] == "gone" and digest in error["message"] and "retention" in error["message"]
    assert agent.get(f"/api/v2/evidence/acme/{digest}").json()["dropped_at"] is not None
    # web: the download is a page saying so, with status 410; the attestation page marks the file
    client.force_login(owner)
    page = client.get(f"/o/acme/evidence/{digest}/download/")
    assert page.status_code == 410 and b"removed by the org&#x27;s retention policy" in page.content
    assert digest.encode() in page.content
    attestation = Attestation.objects.get(pk=history["old_attestation"])
    page = client.get(f"/o/acme/flows/backend/trails/build-1/attestations/{attestation.pk}/")
    assert page.status_code == 200 and b'data-testid="removed-by-retention"' in page.content
    # an Idempotency-Key replay of a dropped report still answers from the stored fields
    old = history["reports"]["old-heartbeat"]
    snapshotter = api(token=token_for(org, Role.SNAPSHOTTER))
    replay = snapshotter.put("/api/v2/environments/acme/prod/report/server",
                             data=json.dumps(server_report(fp(1))).encode(), content_type="application/json",
                             HTTP_IDEMPOTENCY_KEY="k-1")
    assert replay.status_code == 201 and replay.json()["id"] == old.pk and replay.json()["sha256"] == old.payload_sha256
    status = snapshotter.get(f"/api/v2/environments/acme/prod/reports/{old.pk}").json()
    assert status["status"] == "unchanged" and status["body_dropped_at"] is not None


def test_verification_keeps_passing_after_dropping(org, history, generate, tmp_path):  # noqa: F811
    set_retention(CTX, org, report_body_retention_days=30, evidence_file_retention_days=30)
    apply_retention(org.pk, now=history["between"] + timedelta(days=30))
    call_command("verify_audit", org=org.slug)  # raises on any mismatch
    # an audit package lists the dropped file without bytes; its proof bundle still verifies offline
    response = history["client"].get("/api/v2/trails/acme/backend/build-1/audit-package")
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())
        names = archive.getnames()
    dropped = [f for f in manifest["files"] if f["sha256"] == sha(b"old only\n")]
    assert dropped and all(f["path"] is None and f["removed_by_retention_at"] for f in dropped)
    assert not any(name.endswith("only-old.txt") for name in names)
    records = [*manifest["artifacts"], *manifest["attestations"], *manifest["files"]]
    cited = {r["journal"]["index"]: r["journal"]["leaf_hash"] for r in records if r["journal"]}
    assert bundle_problems(manifest["journal_proofs"], current_signer().verifier, cited) == []
    (tmp_path / "package.tar.gz").write_bytes(body)
    done = subprocess.run([sys.executable, "-m", "csm_agent.verify", "package", str(tmp_path / "package.tar.gz"),
                           "--key", str(current_signer().verifier)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    # an audit report of the environment, made after the bodies went, verifies offline
    today = timezone.now().date()
    report = generate(org, "environment", environment="prod", **{"from": (today - timedelta(days=200)).isoformat(),
                                                                  "to": (today + timedelta(days=1)).isoformat()})
    assert report.status == "done", report.error
    data = json.loads(bytes(report.output.data_json))
    cited = {index: leaf_hash for _kind, index, leaf_hash, _label in data["integrity"]["cited"]}
    assert cited and bundle_problems(data["integrity"]["proofs"], current_signer().verifier, cited) == []
    assert all(leaf_bytes_match(org, index, leaf_hash) for index, leaf_hash in cited.items())
    call_command("verify_audit", org=org.slug)


# --- the database still refuses rewrites --------------------------------------------------------------------

def _refused(sql, params):
    with pytest.raises(DatabaseError, match="csm: append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_database_refuses_any_other_rewrite_of_a_report(org, history):
    report = history["reports"]["old"]
    # before retention: the body may not be emptied without the marker, nor the marker set with the body kept
    _refused("UPDATE snapshots_report SET payload = %s WHERE id = %s", [b"", report.pk])
    _refused("UPDATE snapshots_report SET payload_dropped_at = now() WHERE id = %s", [report.pk])
    # nor emptied while another column changes
    _refused("UPDATE snapshots_report SET payload = %s, payload_dropped_at = now(), payload_sha256 = %s WHERE id = %s",
             [b"", "0" * 64, report.pk])
    set_retention(CTX, org, report_body_retention_days=30)
    apply_retention(org.pk)
    # after: no other column, no second drop, no restored body, no delete
    _refused("UPDATE snapshots_report SET payload_sha256 = %s WHERE id = %s", ["0" * 64, report.pk])
    _refused("UPDATE snapshots_report SET payload_bytes = 1 WHERE id = %s", [report.pk])
    _refused("UPDATE snapshots_report SET payload = %s WHERE id = %s", [b"{}", report.pk])
    _refused("UPDATE snapshots_report SET payload_dropped_at = NULL WHERE id = %s", [report.pk])
    _refused("UPDATE snapshots_report SET payload_dropped_at = now() WHERE id = %s", [report.pk])
    _refused("DELETE FROM snapshots_report WHERE id = %s", [report.pk])


def test_the_database_refuses_any_other_rewrite_of_an_evidence_file(org, history):
    set_retention(CTX, org, evidence_file_retention_days=30)
    apply_retention(org.pk, now=history["between"] + timedelta(days=30))
    dropped = EvidenceFile.objects.get(org=org, sha256=sha(b"old only\n"))
    _refused("UPDATE evidence_evidencefile SET dropped_at = now() WHERE id = %s", [dropped.pk])
    _refused("UPDATE evidence_evidencefile SET dropped_at = NULL WHERE id = %s", [dropped.pk])
    _refused("UPDATE evidence_evidencefile SET size = 1 WHERE id = %s", [dropped.pk])
    _refused("DELETE FROM evidence_evidencefile WHERE id = %s", [dropped.pk])


# --- scheduling ---------------------------------------------------------------------------------------------

def test_the_task_is_on_the_beat_schedule_and_registered_for_the_embedded_scheduler():
    entry = django_settings.CELERY_BEAT_SCHEDULE["retention"]
    assert entry == {"task": "evidence.apply_retention", "schedule": django_settings.CSM_RETENTION_INTERVAL_SECONDS}
    app.loader.import_default_modules()
    assert "evidence.apply_retention" in app.tasks


def test_the_task_visits_only_orgs_with_a_retention(org, other_org, history):
    assert apply_retention_task() == 0
    set_retention(CTX, org, report_body_retention_days=30)
    assert apply_all_retention() == 1
    assert Report.objects.get(pk=history["reports"]["old"].pk).payload_dropped_at is not None
    assert Report.objects.get(pk=history["reports"]["other-org"].pk).payload_dropped_at is None
    app.conf.task_always_eager = True
    try:
        # the embedded default runs it too: there the sweeper ingests the old pending report, then retention
        # (later in the schedule) drops its body
        call_command("run_scheduler", once=True)
    finally:
        app.conf.task_always_eager = False
    pending = Report.objects.select_related("outcome").get(pk=history["reports"]["old-pending"].pk)
    assert pending.outcome.status == "snapshot" and pending.payload_dropped_at is not None
    assert [event.after["report_bodies"]["dropped"] for event in retention_events(org)] == [2, 1]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_drop_each_body_once(org, settings):
    """Two runs in two threads (two database sessions), small batches: every old body is dropped exactly once
    and the two summary events add up to the number dropped."""
    import threading

    from django.db import connections

    settings.CSM_RETENTION_BATCH_SIZE = 3
    env, _ = create_or_update_environment(CTX, org, "prod", "server")
    ids = []
    for n in range(30):
        report, _ = accept_report(CTX, env, "server", json.dumps(server_report(fp(100 + n % 2))).encode(),
                                  received_at=timezone.now() - timedelta(days=60 - n))
        ingest_report(report.pk)
        ids.append(report.pk)
    set_retention(CTX, org, report_body_retention_days=7)
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            start.wait()
            apply_retention(org.pk)
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Report.objects.filter(pk__in=ids, payload_dropped_at__isnull=False).count() == 30
    assert sum(event.after["report_bodies"]["dropped"] for event in retention_events(org)) == 30
    call_command("verify_audit", org=org.slug)
