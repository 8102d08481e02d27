"""csm through PgBouncer in transaction pooling (docs/scaling.md, "PgBouncer").

A real ``pgbouncer`` (Debian's, as the postgres user, its own ini in a temporary directory, on a free port,
``pool_mode = transaction`` with two server connections for the test database) stands in front of the test
server. The web side (through_pgbouncer.py, a process of its own) and a Celery worker process both have
``DATABASE_URL`` pointing at it and ``CSM_DB_POOLER=pgbouncer``: reports accepted over the API, ingested by the
worker, read and diffed, an attestation, then ``verify_audit`` — and PgBouncer's own statistics show the
transactions went through it.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from django.db import connections

from snapshots.models import Snapshot
from tests.conftest import wait_for
from tests.replica.conftest import free_port, primary_conninfo

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _pgbouncer_answers(port: int) -> bool:
    try:
        admin(port, "SHOW VERSION")
        return True
    except psycopg.OperationalError:
        return False


def admin(port: int, command: str) -> list[dict]:
    """A command of PgBouncer's admin console (simple query protocol: it knows no other)."""
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="pgbouncer", autocommit=True,
                         cursor_factory=psycopg.ClientCursor, connect_timeout=5) as conn:
        cursor = conn.cursor()
        cursor.execute(command)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def pgbouncer(django_db_setup):
    """(port) of a PgBouncer in transaction pooling in front of the test server; stopped (and with it its
    server connections, so the test database can be dropped) at the end of the module."""
    if not Path(PGBOUNCER).exists():
        pytest.skip("pgbouncer is not installed (scripts/setup --dev installs it)")
    server = primary_conninfo()
    base = Path(tempfile.mkdtemp(prefix="csm-test-pgbouncer-"))
    port = free_port()
    (base / "userlist.txt").write_text(f'"{server.get("user", "postgres")}" ""\n', encoding="utf-8")
    (base / "pgbouncer.ini").write_text(f"""[databases]
* = host={server["host"]} port={server.get("port") or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {base}/userlist.txt
admin_users = {server.get("user", "postgres")}
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {base}/pgbouncer.log
""", encoding="utf-8")
    user = None
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        user = "postgres"
        postgres = pwd.getpwnam(user)
        for path in (base, *base.iterdir()):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
    process = subprocess.Popen([PGBOUNCER, str(base / "pgbouncer.ini")], user=user, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: process.poll() is not None or _pgbouncer_answers(port), "pgbouncer to listen")
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited: {(base / 'pgbouncer.log').read_text(errors='replace')}")
        yield port
    finally:
        process.send_signal(signal.SIGTERM)  # immediate shutdown: closes every client and server connection
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


def through(port: int) -> dict:
    """The environment of a csm process whose database connections all go through PgBouncer."""
    params = connections["default"].settings_dict
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "csm.test_settings", "CSM_DB_POOLER": "pgbouncer",
            "DATABASE_URL": f"postgres://{params['USER'] or 'postgres'}@127.0.0.1:{port}/{params['NAME']}",
            "PYTHONPATH": str(ROOT)}


def test_csm_works_through_pgbouncer_in_transaction_pooling(pgbouncer, transactional_db):
    env = through(pgbouncer)
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "csm", "worker", "-P", "solo", "-l", "WARNING",
         "-Q", "celery,ingest,alerts,reports", "-n", f"pgbouncer-test-{os.getpid()}@%h", "--without-mingle",
         "--without-gossip"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run = subprocess.run([sys.executable, str(Path(__file__).with_name("through_pgbouncer.py"))], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=600)
    finally:
        worker.terminate()
        worker_output, _ = worker.communicate(timeout=120)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\nworker:\n{worker_output}"
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["database_port"] == str(pgbouncer)
    assert seen["statuses"] == ["snapshot"] * 12, worker_output
    assert seen["snapshot_indexes"] == list(range(1, 13))
    assert seen["latest_artifacts"] == 12
    assert seen["diff"] == [0, 11]  # prod#12 runs app-2 .. app-12 besides prod#1's app-1
    assert seen["attestation"], seen
    assert seen["verify_audit"].startswith("acme: ok"), seen["verify_audit"]
    # Every snapshot is in the database (read here directly, not through PgBouncer)...
    assert list(Snapshot.objects.filter(environment__org__slug="acme").order_by("index")
                .values_list("index", flat=True)) == list(range(1, 13))
    # ...and got there through PgBouncer: its pool of the test database served the transactions.
    stats = {row["database"]: row for row in admin(pgbouncer, "SHOW STATS")}
    assert stats[connections["default"].settings_dict["NAME"]]["total_xact_count"] > 100


def test_without_the_pooler_setting_an_iterator_loses_its_cursor(pgbouncer, transactional_db):
    """Why CSM_DB_POOLER=pgbouncer exists: Django's server-side cursor of an ``.iterator()`` outside a
    transaction lives on one server connection; when another client holds that one, the next FETCH goes to
    another server connection and the cursor is not there. With the setting the iterator reads client-side."""
    script = [sys.executable, str(Path(__file__).with_name("through_pgbouncer.py")), "server-side-cursors"]

    def run(pooler: str) -> dict:
        done = subprocess.run(script, cwd=ROOT, env={**through(pgbouncer), "CSM_DB_POOLER": pooler},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    direct = run("")
    assert direct["server_side_cursors"] is True
    assert "InvalidCursorName" in direct["iterator"], direct
    assert run("pgbouncer") == {"iterator": "ok", "server_side_cursors": False}
