"""Backup and restore with real parts (docs/operations.md, "Backup and restore"): an org populated through
the API and a real Celery worker, ``scripts/backup`` and ``scripts/restore`` run as an operator runs them
(subprocesses, pg_dump / pg_restore) into a fresh PostgreSQL database and a fresh evidence directory, and
the restored state read back through the same API. Then the failures an operator depends on: a tampered
backup, a database that is not empty, a restored audit row that was altered."""

import contextlib
import hashlib
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.context import AuditContext
from journal.models import JournalCheckpoint
from journal.verify import verify_journal
from reports.backup import missing_evidence
from snapshots.models import ReportOutcome
from tenants.choices import Role
from tenants.models import Org
from tenants.services import set_retention
from tests.conftest import real_worker, wait_for
from tests.evidence.conftest import attest, begin_trail, make_flow
from tests.snapshots.conftest import fp, server_report

ROOT = Path(__file__).resolve().parent.parent
NOTES = b"release notes of build 1: nothing surprising\n"


def _admin_connection():
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"] or None, user=db["USER"], password=db["PASSWORD"] or None,
                           dbname="postgres", autocommit=True)


@pytest.fixture
def fresh_database():
    """fresh_database(suffix) -> the name of a new, empty PostgreSQL database (dropped at the end)."""
    made = []

    def make(suffix):
        name = f"{settings.DATABASES['default']['NAME']}_{suffix}"
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return name

    yield make
    with _admin_connection() as admin:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(name):
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{name}"


def run_script(*args, database, evidence_root, var_dir):
    """scripts/backup or scripts/restore as an operator runs them: csm's own settings, from the environment."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "csm.settings", "DATABASE_URL": _url(database),
           "CSM_EVIDENCE_ROOT": str(evidence_root), "CSM_VAR_DIR": str(var_dir),
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CACHE_URL": settings.CACHES["default"]["LOCATION"]}
    return subprocess.run([str(ROOT / "scripts" / args[0]), *args[1:]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, check=False)


@contextlib.contextmanager
def connected_to(name):
    """Point this process's database connection at another database (as Django's test runner does for the
    test database), and back."""
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    cache.clear()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        cache.clear()


def _tables(name):
    with psycopg.connect(_url(name)) as conn:
        return {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def _checkpoints():
    return list(JournalCheckpoint.objects.order_by("org__slug", "id").values_list(
        "org__slug", "size", "root_hash", "note", "key_name", "key_id"))


def _history(reader):
    """The snapshot history and diffs as the API answers them."""
    answers = {path: reader.get(path) for path in (
        "/api/v2/snapshots/acme/prod", "/api/v2/snapshots/acme/prod/1", "/api/v2/snapshots/acme/prod/-1",
        "/api/v2/env-diff/acme?snappish1=prod%231&snappish2=prod",
        "/api/v2/env-diff/acme?snappish1=prod%232&snappish2=prod%233")}
    assert all(a.status_code == 200 for a in answers.values()), {p: a.status_code for p, a in answers.items()}
    return {path: _without_running_duration(a.json()) for path, a in answers.items()}


def _without_running_duration(value):
    """The answer without the running snapshot's ``duration`` (now minus its start: it grows by the second)."""
    if isinstance(value, list):
        return [_without_running_duration(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_running_duration(v) for k, v in value.items()
                if not (k == "duration" and value.get("to") == 0)}
    return value


@pytest.fixture
def evidence_root(settings, tmp_path):
    root = tmp_path / "evidence"
    settings.CSM_EVIDENCE_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_into_a_fresh_database_with_the_same_journal_evidence_and_history(
        org, other_org, token_for, api, evidence_root, fresh_database, tmp_path, settings):
    agent = api(token=token_for(org, Role.SNAPSHOTTER))
    member = api(token=token_for(org, Role.MEMBER))
    reader = api(token=token_for(org, Role.READER))
    assert agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    with real_worker():
        for running in ((fp(1), fp(2)), (fp(1), fp(3)), (fp(1), fp(3), fp(4))):
            response = agent.put("/api/v2/environments/acme/prod/report/server",
                                 data=json.dumps(server_report(*running)), content_type="application/json")
            assert response.status_code == 201, response.content
            report = response.json()["id"]
            assert wait_for(lambda r=report: ReportOutcome.objects.filter(report_id=r).first(),
                            "the worker to ingest the report").status == "snapshot"
        make_flow(member)
        begin_trail(member)
        response = attest(member, "acme", "backend", "build-1", "generic", {"attestation_name": "notes"},
                          NOTES, "notes.txt")
        assert response.status_code == 201, response.content
    sha = hashlib.sha256(NOTES).hexdigest()
    assert response.json()["evidence"][0]["sha256"] == sha
    call_command("journal_checkpoint")
    checkpoints = _checkpoints()
    assert {slug for slug, *_ in checkpoints} == {"acme", "globex"}
    history = _history(reader)

    backup = tmp_path / "backup"
    source = settings.DATABASES["default"]["NAME"]
    made = run_script("backup", str(backup), database=source, evidence_root=evidence_root, var_dir=tmp_path / "var")
    assert made.returncode == 0, made.stdout + made.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    latest_of_acme = [c for c in checkpoints if c[0] == "acme"][-1]
    assert manifest["orgs"]["acme"]["checkpoint"]["note"] == latest_of_acme[3]
    assert manifest["orgs"]["acme"]["head"]["index"] == latest_of_acme[1]
    assert f"evidence/{org.pk}/{sha[:2]}/{sha}" in manifest["files"]
    assert manifest["migrations"]["journal"] and manifest["files"]["database.dump"]["size"] > 0

    restored, restored_evidence = fresh_database("restored"), tmp_path / "restored-evidence"
    done = run_script("restore", str(backup), database=restored, evidence_root=restored_evidence,
                      var_dir=tmp_path / "var2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme: ok" in done.stdout and "globex: ok" in done.stdout  # verify_audit
    assert "restore complete" in done.stdout

    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(restored_evidence)}}}
    with connected_to(restored):
        assert _checkpoints() == checkpoints  # sizes, roots, signed notes, keys: the very same checkpoints
        assert all(verify_journal(row) is None for row in Org.objects.all())
        assert _history(reader) == history
        download = reader.get(f"/api/v2/evidence/acme/{sha}/download")
        assert download.status_code == 200
        assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == sha

    # An evidence file lost from the restored store: the check names the org and the file.
    stored = restored_evidence / str(org.pk) / sha[:2] / sha
    kept = stored.read_bytes()
    stored.unlink()
    check = run_script("restore", "--check-only", str(backup), database=restored, evidence_root=restored_evidence,
                       var_dir=tmp_path / "var2")
    assert check.returncode != 0
    assert f"org acme: evidence file notes.txt ({sha}) is missing from the evidence store" in check.stderr
    stored.write_bytes(kept)

    # An audit row altered in the restored copy (the append-only trigger bypassed by the superuser): the
    # checks fail, naming the org.
    with psycopg.connect(_url(restored), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE audit_auditevent SET actor_label = 'someone else' WHERE id = "
                     "(SELECT min(e.id) FROM audit_auditevent e JOIN tenants_org o ON o.id = e.org_id "
                     "WHERE o.slug = 'acme')")
    check = run_script("restore", "--check-only", str(backup), database=restored, evidence_root=restored_evidence,
                       var_dir=tmp_path / "var2")
    assert check.returncode != 0
    assert "acme: FAILED" in check.stderr and "globex: ok" in check.stdout


@pytest.mark.django_db(transaction=True)
def test_restore_refuses_a_tampered_backup_and_a_database_that_is_not_empty(
        org, evidence_root, fresh_database, tmp_path, settings):
    call_command("journal_checkpoint")
    backup = tmp_path / "backup"
    made = run_script("backup", str(backup), database=settings.DATABASES["default"]["NAME"],
                      evidence_root=evidence_root, var_dir=tmp_path / "var")
    assert made.returncode == 0, made.stdout + made.stderr

    # One byte of the dump changed: restore stops at the checksums, before the database is touched.
    tampered = tmp_path / "tampered"
    subprocess.run(["cp", "-a", str(backup), str(tampered)], check=True)
    dump = bytearray((tampered / "database.dump").read_bytes())
    dump[len(dump) // 2] ^= 0xFF
    (tampered / "database.dump").write_bytes(bytes(dump))
    empty = fresh_database("empty")
    refused = run_script("restore", str(tampered), database=empty, evidence_root=tmp_path / "e1",
                         var_dir=tmp_path / "var1")
    assert refused.returncode != 0
    assert "database.dump: SHA-256 does not match the manifest" in refused.stderr
    assert _tables(empty) == set()

    # A database with something in it: refused without --force, left as it was.
    used = fresh_database("used")
    with psycopg.connect(_url(used), autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (id integer)")
    refused = run_script("restore", str(backup), database=used, evidence_root=tmp_path / "e2",
                         var_dir=tmp_path / "var2")
    assert refused.returncode != 0
    assert "refusing to restore into a database that is not empty" in refused.stderr
    assert _tables(used) == {"leftover"}
    # --force empties it and restores.
    forced = run_script("restore", "--force", str(backup), database=used, evidence_root=tmp_path / "e2",
                        var_dir=tmp_path / "var2")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "acme: ok" in forced.stdout
    assert "leftover" not in _tables(used) and "audit_journalleaf" in _tables(used)


def _embedded(var_dir):
    """The environment of the embedded default (no DATABASE_URL, no broker): SQLite in ``var_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL",
                                                           "CSM_EVIDENCE_ROOT"}}
    return {**env, "DJANGO_SETTINGS_MODULE": "csm.settings", "CSM_VAR_DIR": str(var_dir)}


def _run(args, env):
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_the_embedded_sqlite_database_backs_up_and_restores(tmp_path):
    python = str(ROOT / ".venv" / "bin" / "python")
    source = _embedded(tmp_path / "var")
    _run([python, "manage.py", "migrate", "--noinput", "-v0"], source)
    _run([python, "manage.py", "create_org", "solo", "--owner", "solo@example.com"], source)
    _run([str(ROOT / "scripts" / "backup"), str(tmp_path / "backup")], source)
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["database"]["engine"] == "sqlite" and "database.sqlite3" in manifest["files"]
    assert manifest["orgs"]["solo"]["checkpoint"]["size"] == manifest["orgs"]["solo"]["head"]["index"] > 0

    done = _run([str(ROOT / "scripts" / "restore"), str(tmp_path / "backup")], _embedded(tmp_path / "restored"))
    assert "solo: ok" in done.stdout and "restore complete" in done.stdout


@pytest.mark.django_db
def test_a_missing_evidence_file_is_named_unless_retention_was_deleting_it(org, token_for, api, evidence_root):
    member = api(token=token_for(org, Role.MEMBER))
    make_flow(member)
    begin_trail(member)
    assert attest(member, "acme", "backend", "build-1", "generic", {"attestation_name": "notes"}, NOTES,
                  "notes.txt").status_code == 201
    sha = hashlib.sha256(NOTES).hexdigest()
    (evidence_root / str(org.pk) / sha[:2] / sha).unlink()
    assert missing_evidence(org) == [f"org acme: evidence file notes.txt ({sha}) is missing from the evidence store"]
    # The org keeps evidence files 30 days: 31 days on, retention deletes the bytes before its row says so,
    # so a backup taken meanwhile may lack them — the next retention run marks the row dropped.
    org = set_retention(AuditContext.system("test"), org, evidence_file_retention_days=30)
    assert missing_evidence(org, now=timezone.now() + timedelta(days=31)) == []
    assert len(missing_evidence(org)) == 1
