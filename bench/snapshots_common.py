"""Shared set-up of the snapshot-journal benchmarks (bench/snapshots_*.py): a dedicated PostgreSQL
database (``csm_bench`` unless CSM_BENCH_DB says otherwise), a redis-server of its own, a real web
server (gunicorn) and a real Celery worker as subprocesses, and peak-memory readings from /proc.

Not a benchmark itself; each benchmark file imports it and runs alone from the project root.
"""

import atexit
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("CSM_BENCH_DB", "csm_bench")
PG = os.environ.get("CSM_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# A redis-server of the benchmark's own (free port) unless CSM_BENCH_REDIS names one: a shared Redis
# database may have another project's test worker consuming from it.
REDIS = os.environ.get("CSM_BENCH_REDIS", "")
# The broker and cache DB numbers on that Redis ("0,1" unless CSM_BENCH_REDIS_DBS says otherwise, e.g. "8,11"
# on a Redis that other test runs use too).
REDIS_DBS = os.environ.get("CSM_BENCH_REDIS_DBS", "0,1").split(",")

SERVER_ENV = {
    "DATABASE_URL": f"{PG}/{BENCH_DB}",
    "DJANGO_SETTINGS_MODULE": "csm.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-use-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "CSM_INSECURE_HTTP": "1",
    "CSM_LOG_LEVEL": "WARNING",
}


def setup(fresh: bool = True):
    """(Re)create the bench database, migrate it, flush the bench Redis DBs, set up Django here."""
    import psycopg

    redis_url = REDIS or start_redis()
    SERVER_ENV.update(CELERY_BROKER_URL=f"{redis_url}/{REDIS_DBS[0]}", CACHE_URL=f"{redis_url}/{REDIS_DBS[1]}")
    if fresh:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    os.environ.update(SERVER_ENV)
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0, skip_checks=True)
    for url in (SERVER_ENV["CELERY_BROKER_URL"], SERVER_ENV["CACHE_URL"]):
        redis.Redis.from_url(url).flushdb()


def start_redis() -> str:
    """A private redis-server on a free port, stopped when the benchmark exits."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(process.terminate)

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(up, 20, "redis-server to start")
    return f"redis://127.0.0.1:{port}"


def make_org(slug: str = "bench"):
    """An org with an admin service-account token; returns (org, plaintext token)."""
    from django.contrib.auth import get_user_model

    from audit.context import AuditContext
    from tenants.services import create_api_token, create_org, create_service_account

    ctx = AuditContext.system("bench")
    owner = get_user_model().objects.create_user(username=f"{slug}@bench", email=f"{slug}@bench")
    org = create_org(ctx, slug, slug.title(), owner)
    account = create_service_account(ctx, org, "bench-agent", "admin")
    _, token = create_api_token(ctx, org, "bench", service_account=account)
    return org, token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(p) for p in text)
    return found


class Process:
    """A subprocess of the benchmark (web server or worker), stopped on exit."""

    def __init__(self, args: list[str], env_extra: dict | None = None):
        # Output goes to $TMPDIR/csm-bench-<program>.log, to debug a benchmark that stalls.
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"csm-bench-{Path(args[0]).name}.log"
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **SERVER_ENV, **(env_extra or {})},
                                          stdout=out, stderr=subprocess.STDOUT)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Web(Process):
    """gunicorn with one worker process (threads for concurrency), like a small deployment."""

    def __init__(self, threads: int = 4, workers: int = 1):
        self.port = free_port()
        super().__init__([str(ROOT / ".venv/bin/gunicorn"), "csm.wsgi", "-w", str(workers), "--threads", str(threads),
                          "-b", f"127.0.0.1:{self.port}", "--timeout", "300"])
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._up, 60, "the web server to start")

    def _up(self):
        import requests

        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def peak_rss_mib(self) -> float:
        return max((peak_rss_mib(pid) for pid in children(self.popen.pid)), default=0.0)


class Worker(Process):
    """A real Celery worker (solo pool: one process, so its peak memory is the ingest's)."""

    def __init__(self, name: str = "bench"):
        super().__init__([str(ROOT / ".venv/bin/celery"), "-A", "csm", "worker", "--pool", "solo", "-l", "WARNING",
                          "--without-mingle", "--without-gossip", "--without-heartbeat", "-n", f"{name}@%h"])

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.popen.pid)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def outcome_ready(report_ids):
    from snapshots.models import ReportOutcome

    ids = list(report_ids)
    return ReportOutcome.objects.filter(report_id__in=ids).count() == len(ids)


def copy_seconds(rows: list[tuple], columns: list[str], like: str = "snapshots_snapshotentry") -> float:
    """The floor: the same rows written with one plain PostgreSQL COPY into a table shaped (and indexed)
    like ``like``, in its own transaction. Returns seconds."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy_floor")
        cursor.execute(f"CREATE TABLE bench_copy_floor (LIKE {like} INCLUDING DEFAULTS INCLUDING IDENTITY "
                       "INCLUDING INDEXES)")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY bench_copy_floor ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_copy_floor")
    return elapsed


def entry_rows(org_id: int, env_id: int, running: dict, when) -> list[tuple]:
    """The entry rows ingest writes for a canonical running set (for the COPY floor)."""
    from snapshots.report_bodies import instances_json

    return [(org_id, env_id, name, fp, len(instances), instances_json(instances), when, 1, "started")
            for (name, fp), instances in running.items()]


ENTRY_COLUMNS = ["org_id", "environment_id", "name", "fingerprint", "instance_count", "instances", "running_since",
                 "from_index", "change"]


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"
