"""A real PostgreSQL streaming replica of the test server, and the read routing pointed at it.

``replica`` (session) takes a base backup of the running primary with ``pg_basebackup -R`` once the test
database exists (it depends on ``django_db_setup``), starts it on a free port as a hot standby, waits until it
is in recovery, and adds a ``replica`` alias to ``DATABASES`` for the session; at the end it stops the
cluster and removes it. Tests that read through it use ``transactional_db`` (data of a rolled-back test
transaction never reaches a replica) and ``databases=["default", "replica"]``.

The primary must accept replication connections from 127.0.0.1 (``host replication all 127.0.0.1/32 trust``
in pg_hba.conf). When no such rule exists and pg_hba.conf is writable, the fixture appends it and reloads
the server (``pg_reload_conf()``, no restart); otherwise the tests are skipped, naming the rule they need.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.db import connections

from csm import dbrouter
from tests.conftest import wait_for

HBA_RULE = "host replication all 127.0.0.1/32 trust"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL's programs refuse to run as root: run them as the postgres user when we are root."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def primary_conninfo() -> dict:
    params = connections["default"].get_connection_params()
    return {key: params[key] for key in ("host", "port", "user", "dbname") if params.get(key)}


def primary_query(sql: str, params=()):
    with psycopg.connect(**primary_conninfo(), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _ensure_replication_allowed() -> None:
    rules = primary_query("SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database) "
                          "AND type IN ('host', 'hostnossl') AND error IS NULL")
    if rules[0][0]:
        return
    hba_file = Path(primary_query("SHOW hba_file")[0][0])
    if not os.access(hba_file, os.W_OK):
        pytest.skip(f"the test server refuses replication connections: add '{HBA_RULE}' to {hba_file} and reload")
    with hba_file.open("a", encoding="utf-8") as hba:
        hba.write(f"\n# csm tests/replica: pg_basebackup and streaming of the test replica\n{HBA_RULE}\n")
    primary_query("SELECT pg_reload_conf()")
    wait_for(lambda: primary_query("SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database)"
                                   " AND error IS NULL")[0][0], "pg_hba.conf reloaded")


@dataclass
class Replica:
    """A hot standby on ``port`` streaming from the test server."""

    bindir: Path
    datadir: Path
    port: int

    def pg_ctl(self, *args: str) -> None:
        as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                     *args])

    def query(self, sql: str, params=()):
        conninfo = {**primary_conninfo(), "host": "127.0.0.1", "port": self.port}
        with psycopg.connect(**conninfo, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def start(self) -> None:
        self.pg_ctl("-W", "start")
        # A hot standby opens for reads once it has a snapshot of the primary's running transactions: a
        # transaction with more than 64 subtransactions open on the primary (a long test of another session
        # on a shared server) delays that until it ends.
        wait_for(lambda: self._in_recovery(), "the replica to accept read-only connections (see server.log: a long "
                 "transaction with many savepoints on the primary delays it)", limit=600)

    def stop(self) -> None:
        connections["replica"].close()
        self.pg_ctl("-w", "-m", "fast", "stop")

    def _in_recovery(self) -> bool:
        try:
            return self.query("SELECT pg_is_in_recovery()")[0][0]
        except psycopg.OperationalError:
            return False

    def wait_for_replay(self) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        target = primary_query("SELECT pg_current_wal_lsn()")[0][0]
        wait_for(lambda: self.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0],
                 f"the replica to replay up to {target}")

    def pause_replay(self) -> None:
        self.query("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.query("SELECT pg_wal_replay_resume()")


@pytest.fixture(scope="session")
def replica(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        _ensure_replication_allowed()
        version = int(primary_query("SHOW server_version_num")[0][0]) // 10000
        limits = dict(primary_query(
            "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections', 'max_worker_processes', "
            "'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')"))
    bindir = Path(f"/usr/lib/postgresql/{version}/bin")
    if not (bindir / "pg_basebackup").exists():
        pytest.skip(f"no PostgreSQL {version} programs in {bindir}")
    # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="csm-test-replica-"))
    datadir = base / "data"
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(base, postgres.pw_uid, postgres.pw_gid)
    try:
        conninfo = primary_conninfo()
        as_postgres([str(bindir / "pg_basebackup"), "-h", conninfo["host"], "-p", str(conninfo.get("port") or 5432),
                     "-U", conninfo.get("user", "postgres"), "-D", str(datadir), "-R", "-X", "stream", "-c", "fast"])
        port = free_port()
        # Debian keeps postgresql.conf and pg_hba.conf outside the data directory: the copy brings neither.
        settings_lines = [f"port = {port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{base}'",
                          "hot_standby = on", "shared_buffers = 16MB", "fsync = off", "logging_collector = off",
                          *(f"{name} = {value}" for name, value in limits.items())]
        conf = "\n".join(settings_lines) + "\n"
        for name, text in (("postgresql.conf", conf), ("pg_hba.conf", "local all all trust\nhost all all "
                                                                     "127.0.0.1/32 trust\n"), ("pg_ident.conf", "")):
            as_postgres(["tee", str(datadir / name)], input=text)
        server = Replica(bindir, datadir, port)
        alias = {**connections["default"].settings_dict, "HOST": "127.0.0.1", "PORT": str(port),
                 "TEST": {**connections["default"].settings_dict["TEST"], "MIRROR": "default"}}
        alias["OPTIONS"] = {**alias["OPTIONS"], "connect_timeout": 2}
        server.start()
        connections.settings["replica"] = alias
        yield server
    finally:
        if "replica" in connections.settings:
            if hasattr(connections._connections, "replica"):
                connections["replica"].close()
                del connections["replica"]
            del connections.settings["replica"]
        if (datadir / "postmaster.pid").exists():  # started (or starting), not stopped by a test
            as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-w", "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def replica_routing(replica, settings):
    """The router and middleware csm/settings.py installs when DATABASE_REPLICA_URL is set, and a replica that
    has replayed everything written so far."""
    settings.DATABASE_ROUTERS = ["csm.dbrouter.PrimaryReplicaRouter"]
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index("csm.middleware.RequestIdMiddleware") + 1,
                      "csm.dbrouter.ReplicaRoutingMiddleware")
    settings.MIDDLEWARE = middleware
    dbrouter.reset_replica_health()
    yield replica
    dbrouter.reset_replica_health()

