"""The fault suite's private deployment: real processes of its own, so faults never disturb the shared
PostgreSQL and Redis or any other test.

``stack`` (one per session, started on first use) runs, each on a free loopback port:

- a PostgreSQL cluster of its own (``initdb`` into a temporary directory, ``pg_ctl start``; as the
  ``postgres`` user when the tests run as root), migrated with ``manage.py migrate``;
- a ``redis-server`` of its own (no persistence: restarted, it comes back empty), the broker and the cache;
- the web app: gunicorn, 2 workers, production settings (``DEBUG=0``, plain HTTP);
- a Celery worker process (prefork, concurrency 1, every queue) and ``celery beat`` with the report
  sweeper every second (grace 2 s) — both as a supervisor would run them;
- the evidence store on a 2 MiB tmpfs mounted for the session, so "the disk is full" is the kernel's
  ENOSPC, not a simulation.

An org ``faults`` with a snapshotter and a member token is created with the operators' management
commands. ``Agent`` sends reports with the real agent's HTTP client (``csm_agent.client.CsmClient``:
retries on connection errors, 5xx and 429 with the same Idempotency-Key), and ``prove`` is the proof
each fault test ends with."""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

from snapshots.services.ingest import PAUSE_ENV
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ORG = "faults"
EVIDENCE_TMPFS_BYTES = 2 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def fp(n: int) -> str:
    return f"{n:064x}"


def stop(process: subprocess.Popen | None, sig=signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Postgres:
    """A private cluster; ``restart(mode)`` is ``pg_ctl restart -m fast|immediate``."""

    def __init__(self, base: Path):
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))[-1])
        self.data, self.sockets, self.log = base / "pgdata", base / "pgsock", base / "postgres.log"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/csm"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def _options(self) -> str:
        # fsync off: a crash of the server process (immediate stop) loses nothing; only an OS crash would
        return (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c full_page_writes=off -c max_connections=60")

    def start(self) -> None:
        for folder in (self.data, self.sockets):
            folder.mkdir()
            if os.geteuid() == 0:
                shutil.chown(folder, "postgres", "postgres")
        if os.geteuid() == 0:
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "csm")

    def restart(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-m", mode, "-w",
                  "restart")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


class Stack:
    """The private deployment (see the module docstring)."""

    def __init__(self, base: Path):
        self.base = base
        self.pg = Postgres(base)
        self.redis_port = free_port()
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.evidence = base / "evidence"
        self.pause_marker = base / "ingest-paused"  # exists: the ingest pause hook is disarmed
        self.redis = self.web = self.worker = self.beat = None
        self.logs = base / "logs"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", PAUSE_ENV)},
            "DJANGO_SETTINGS_MODULE": "csm.settings", "DEBUG": "0", "CSM_INSECURE_HTTP": "1",
            "SECRET_KEY": "fault-suite-" + "k" * 50, "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": self.pg.url, "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "CACHE_URL": f"redis://127.0.0.1:{self.redis_port}/1", "CSM_VAR_DIR": str(base / "var"),
            "CSM_EVIDENCE_ROOT": str(self.evidence), "CSM_SWEEP_INTERVAL_SECONDS": "1",
            "CSM_SWEEP_GRACE_SECONDS": "2", PAUSE_ENV: str(self.pause_marker),
        }

    # --- processes -----------------------------------------------------------------------------------

    def _spawn(self, name: str, *command: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            return subprocess.Popen(list(command), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def start(self) -> None:
        self.logs.mkdir()
        self.pause_marker.touch()
        self.evidence.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={EVIDENCE_TMPFS_BYTES},mode=0755", "tmpfs",
                                  str(self.evidence)], capture_output=True, text=True)
        if mounted.returncode:
            raise AssertionError("the fault suite mounts a small tmpfs as the evidence store (a disk that really "
                                 f"fills) and needs root for it, as scripts/test has in CI: {mounted.stderr}")
        self.pg.start()
        self.start_redis()
        self.manage("migrate", "--noinput")
        self.manage("create_org", ORG, "--owner", "owner@faults.example.com")
        self.snapshotter_token = self.manage("create_api_token", "--org", ORG, "--service-account", "agent",
                                             "--role", "snapshotter").splitlines()[-1].strip()
        self.member_token = self.manage("create_api_token", "--org", ORG, "--service-account", "ci",
                                        "--role", "member").splitlines()[-1].strip()
        self.web = self._spawn("gunicorn", str(BIN / "gunicorn"), "csm.wsgi:application", "--bind",
                               f"127.0.0.1:{self.web_port}", "--workers", "2", "--timeout", "120")
        self.start_worker()
        self.beat = self._spawn("beat", str(BIN / "celery"), "-A", "csm", "beat", "-l", "INFO",
                                "-s", str(self.base / "beat-schedule"), "--pidfile", str(self.base / "beat.pid"))
        wait_for(lambda: self.get("/healthz").status_code == 200 if listening(self.web_port) else False,
                 limit=120, what="gunicorn to answer")

    def start_redis(self) -> None:
        """redis-server without persistence: each start is an empty broker."""
        self.redis = self._spawn("redis", "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", str(self.base))
        wait_for(lambda: listening(self.redis_port), limit=30, what="redis-server to listen")

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", str(BIN / "celery"), "-A", "csm", "worker", "-l", "INFO",
                                  "-Q", "celery,ingest,alerts,reports", "--concurrency", "1",
                                  "--without-mingle", "--without-gossip")

    def close(self) -> None:
        for process in (self.beat, self.worker, self.web, self.redis):
            stop(process)
        try:
            self.pg.stop()
        except subprocess.CalledProcessError:
            pass
        subprocess.run(["umount", str(self.evidence)], capture_output=True)

    # --- talking to it -------------------------------------------------------------------------------

    def manage(self, *args: str, check: bool = True) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                                text=True, timeout=300)
        if check and result.returncode:
            raise AssertionError(f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}"
                                 f"\n{result.stderr}")
        return result.stdout

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)

    def sql(self, query: str, params=()) -> list[tuple]:
        """A query on the private database, in a connection of its own (which survives nothing)."""
        with psycopg.connect(host="127.0.0.1", port=self.pg.port, user="postgres", dbname="csm",
                             autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def pending(self) -> int:
        return self.sql("SELECT count(*) FROM snapshots_report r LEFT JOIN snapshots_reportoutcome o "
                        "ON o.report_id = r.id WHERE o.id IS NULL")[0][0]

    def worker_child_pids(self) -> list[int]:
        """The worker's pool processes (children of its main process), from /proc."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(fields[1]) == self.worker.pid:
                children.append(int(stat.parent.name))
        return children


@pytest.fixture(scope="session")
def stack():
    base = Path(tempfile.mkdtemp(prefix="csm-faults-"))
    base.chmod(0o755)  # the postgres user reaches its data directory
    deployment = Stack(base)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.close()
        if os.environ.get("CSM_FAULTS_KEEP") != "1":
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"fault suite files kept in {base}")


def report_body(version: int) -> dict:
    """A server-type report: an unchanging 'db' and version ``version`` of 'app', so each is a new snapshot."""
    return {"artifacts": [{"digests": {"db": fp(10**6)}, "creationTimestamp": 1_700_000_000},
                          {"digests": {"app": fp(version)}, "creationTimestamp": 1_700_000_000 + version}]}


class Agent:
    """One environment's agent: sends each report with the real agent client until csm accepts it (the
    same Idempotency-Key on every retry), one at a time, as an agent does. ``accepted`` lists the keys
    csm answered 2xx for, in order."""

    def __init__(self, stack: Stack, environment: str):
        from csm_agent.client import CsmClient

        # The client's backoff (up to 30 s with jitter) is capped to keep the suite short; its retry logic
        # and key reuse are the agent's own.
        self.client = CsmClient(stack.url, stack.snapshotter_token, ORG, max_retries=60,
                                sleep=lambda delay: time.sleep(min(delay, 0.5)))
        self.environment = environment
        self.accepted: list[str] = []
        self.errors: list[BaseException] = []
        self.client.create_environment(environment, "server", "fault suite")

    def send(self, version: int) -> None:
        key = f"{self.environment}-{version}-{uuid.uuid4().hex[:8]}"
        url = self.client.url("environments", ORG, self.environment, "report", "server")
        response = self.client.request("PUT", url, report_body(version), idempotency_key=key, compress=True)
        assert response.status_code in (200, 201), response.text
        self.accepted.append(key)

    def run(self, versions) -> threading.Thread:
        def loop():
            try:
                for version in versions:
                    self.send(version)
            except BaseException as error:  # noqa: BLE001 - re-raised by finish()
                self.errors.append(error)

        thread = threading.Thread(target=loop, name=f"agent-{self.environment}")
        thread.start()
        return thread


def finish(threads, agents) -> None:
    for thread in threads:
        thread.join(timeout=600)
    for agent in agents:
        assert not agent.errors, agent.errors


def prove(stack: Stack, agents: list[Agent]) -> None:
    """Every report csm accepted is stored exactly once, and each environment's snapshots are exactly its
    accepted reports, numbered 1..n in acceptance order; nothing is pending; the journal verifies; the
    service is ready again — all without anyone restarting the web app, the worker or beat."""
    wait_for(lambda: stack.pending() == 0, limit=180, what="every accepted report to be ingested")
    for agent in agents:
        env_id = stack.sql("SELECT e.id FROM snapshots_environment e JOIN tenants_org o ON o.id = e.org_id "
                           "WHERE o.slug = %s AND e.name = %s", (ORG, agent.environment))[0][0]
        stored = stack.sql("SELECT idempotency_key, count(*) FROM snapshots_report WHERE environment_id = %s "
                           "GROUP BY idempotency_key", (env_id,))
        assert dict(stored) == dict.fromkeys(agent.accepted, 1), agent.environment
        snapshots = stack.sql("SELECT s.index, r.idempotency_key FROM snapshots_snapshot s JOIN snapshots_report r "
                              "ON r.id = s.report_id WHERE s.environment_id = %s ORDER BY s.index", (env_id,))
        assert [index for index, _ in snapshots] == list(range(1, len(agent.accepted) + 1)), agent.environment
        assert [key for _, key in snapshots] == agent.accepted, agent.environment
        statuses = stack.sql("SELECT o.status, count(*) FROM snapshots_reportoutcome o JOIN snapshots_report r "
                             "ON r.id = o.report_id WHERE r.environment_id = %s GROUP BY o.status", (env_id,))
        assert dict(statuses) == {"snapshot": len(agent.accepted)}, agent.environment
    assert "ok" in stack.manage("verify_audit", "--org", ORG)
    ready = wait_for(lambda: (r := stack.get("/ready")).status_code == 200 and r, limit=60, what="/ready 200")
    assert ready.text.startswith("OK")


def json_error(response) -> dict:
    return json.loads(response.text)["error"]
