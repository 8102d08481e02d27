"""Durability against real processes: a Celery worker, kill -9 mid-ingest, Redis down, concurrent replays,
and the append-only triggers."""

import json
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.utils import DatabaseError

from journal.verify import verify_journal
from snapshots import selectors
from snapshots.models import Report, ReportOutcome, Snapshot, SnapshotEntry
from snapshots.services.ingest import PAUSE_ENV, ingest_report
from snapshots.services.reports import ingest_backlog, pending_reports, sweep_pending_reports
from tenants.choices import Role
from tests.conftest import real_worker, wait_for
from tests.snapshots.conftest import fp, server_report

ROOT = Path(__file__).resolve().parents[2]


def put_report(client, body, env="prod", key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.put(f"/api/v2/environments/acme/{env}/report/server", data=json.dumps(body).encode(),
                      content_type="application/json", **headers)


@pytest.fixture
def agent(api, org, token_for):
    client = api(token=token_for(org, Role.SNAPSHOTTER))
    assert client.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    return client


def outcome_of(report_id):
    return ReportOutcome.objects.filter(report_id=report_id).first()


@pytest.mark.django_db(transaction=True)
def test_report_is_ingested_by_a_real_worker(agent, celery_worker):
    first = put_report(agent, server_report(fp(1), fp(2))).json()["id"]
    assert wait_for(lambda: outcome_of(first), what="ingest").status == "snapshot"
    second = put_report(agent, server_report(fp(1), fp(2))).json()["id"]
    assert wait_for(lambda: outcome_of(second), what="ingest").status == "unchanged"
    assert Snapshot.objects.count() == 1


def _worker(env_extra: dict) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "csm.test_settings",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}",
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, **env_extra}
    if PAUSE_ENV not in env_extra:
        env.pop(PAUSE_ENV, None)
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "csm", "worker", "--pool", "solo", "-l", "WARNING",
         "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.django_db(transaction=True)
def test_kill_9_mid_ingest_then_restart_ingests_exactly_once(agent, tmp_path):
    marker = tmp_path / "ingest-paused"
    report_id = put_report(agent, server_report(*[fp(i) for i in range(1, 200)])).json()["id"]
    worker = _worker({PAUSE_ENV: str(marker)})
    try:
        wait_for(marker.exists, what="the worker to reach the middle of ingest")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    # The transaction died with the process: nothing half-written, the report is still pending.
    wait_for(lambda: not _env_locked(), what="PostgreSQL to roll back the dead worker's transaction")
    assert outcome_of(report_id) is None
    assert Snapshot.objects.count() == 0 and SnapshotEntry.objects.count() == 0
    assert list(pending_reports().values_list("id", flat=True)) == [report_id]
    worker = _worker({})
    try:
        assert sweep_pending_reports(min_age_seconds=0) == 1
        outcome = wait_for(lambda: outcome_of(report_id), what="the restarted worker to ingest")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert outcome.status == "snapshot"
    assert ingest_report(report_id).pk == outcome.pk  # the original message, redelivered: a no-op
    assert Snapshot.objects.count() == 1 and ReportOutcome.objects.count() == 1
    assert SnapshotEntry.objects.count() == 199


def _env_locked() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(up, limit=20, what="redis-server to start")
    return process


@pytest.fixture
def private_broker():
    """Point the Celery app at a redis-server of our own, which the test may stop and start."""
    from csm.celery import app

    port = _free_port()
    names = ("broker_url", "broker_read_url", "broker_write_url")
    old = {name: app.conf[name] for name in names}
    for name in names:
        app.conf[name] = f"redis://127.0.0.1:{port}/0"
    app._pool = None
    app.amqp._producer_pool = None
    holder = {"process": _redis(port), "port": port}
    yield holder
    holder["process"].terminate()
    holder["process"].wait(timeout=10)
    for name, value in old.items():
        app.conf[name] = value
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_reports_accepted_while_redis_is_down_are_ingested_after_it_returns(agent, private_broker):
    from csm.celery import app

    private_broker["process"].terminate()
    private_broker["process"].wait(timeout=10)
    ids = [put_report(agent, server_report(fp(1))).json()["id"],
           put_report(agent, server_report(fp(1), fp(2))).json()["id"]]
    assert Report.objects.count() == 2 and all(outcome_of(i) is None for i in ids)
    private_broker["process"] = _redis(private_broker["port"])
    app._pool = None
    app.amqp._producer_pool = None
    # One message per environment: its newest pending report, whose ingest first ingests the older one.
    assert sweep_pending_reports(min_age_seconds=0) == 1
    with real_worker():
        wait_for(lambda: all(outcome_of(i) for i in ids), what="both reports to be ingested")
    assert [outcome_of(i).status for i in ids] == ["snapshot", "snapshot"]
    assert Snapshot.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_idempotent_replays_store_one_report(api, org, token_for, agent):
    token = token_for(org, Role.SNAPSHOTTER)
    body = server_report(fp(1), fp(2))
    answers, errors = [], []
    barrier = threading.Barrier(6)

    def replay():
        from django.db import connections

        try:
            client = api(token=token)
            barrier.wait()
            response = put_report(client, body, key="same-key")
            answers.append((response.status_code, response.json()))
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=replay) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {status for status, _ in answers} == {201}
    assert len({answer["id"] for _, answer in answers}) == 1
    assert Report.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_append_only_triggers_reject_updates_and_deletes(agent):
    report_id = put_report(agent, server_report(fp(1))).json()["id"]
    ingest_report(report_id)
    put_report(agent, server_report(fp(2)))
    ingest_report(Report.objects.latest("id").pk)
    open_entry = SnapshotEntry.objects.get(to_index__isnull=True)
    statements = [
        "UPDATE snapshots_snapshot SET artifact_count = 99",
        "DELETE FROM snapshots_snapshot",
        "UPDATE snapshots_report SET payload_sha256 = 'x'",
        "DELETE FROM snapshots_report",
        "UPDATE snapshots_reportoutcome SET status = 'unchanged'",
        "DELETE FROM snapshots_snapshotevent",
        "UPDATE snapshots_snapshotevent SET name = 'x'",
        "DELETE FROM snapshots_snapshotentry",
        "UPDATE snapshots_snapshotentry SET to_index = 7 WHERE to_index IS NOT NULL",  # closed once already
        f"UPDATE snapshots_snapshotentry SET name = 'renamed' WHERE id = {open_entry.pk}",
    ]
    for statement in statements:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    with connection.cursor() as cursor:  # closing an open validity range once is allowed
        cursor.execute(f"UPDATE snapshots_snapshotentry SET to_index = 3 WHERE id = {open_entry.pk}")
    assert SnapshotEntry.objects.get(pk=open_entry.pk).to_index == 3


@pytest.mark.django_db(transaction=True)
def test_sweeper_leaves_a_backlog_alone_and_resends_lost_messages(agent):
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    first = put_report(agent, server_report(fp(1))).json()["id"]  # published on commit: one queued message
    assert ingest_backlog() == 1
    assert (client.llen("ingest"), client.llen("celery")) == (1, 0)  # its own queue: never behind webhooks
    assert sweep_pending_reports(min_age_seconds=0) == 0  # queued, not lost
    client.flushdb()  # the broker lost it
    assert ingest_backlog() == 0
    assert sweep_pending_reports(min_age_seconds=0) == 1
    assert ingest_backlog() == 1
    client.flushdb()
    assert outcome_of(first) is None


# --- Every accepted report becomes history, in order, exactly once (real processes) -----------------

def _beat(env_extra: dict, directory: Path) -> subprocess.Popen:
    """A real `celery beat` (the production sweeper schedule), with the test's database and broker."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "csm.test_settings",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}",
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, **env_extra}
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "csm", "beat", "-l", "WARNING", "-s", str(directory / "beat-schedule"),
         "--pidfile", str(directory / "beat.pid")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _broker_down(broker) -> None:
    _stop(broker["process"])


def _broker_back_empty(broker) -> None:
    """redis-server restarted on the same port without its data (no persistence): every message is gone."""
    from csm.celery import app

    broker["process"] = _redis(broker["port"])
    app._pool = None  # the web process reconnects
    app.amqp._producer_pool = None


def version_report(version: int) -> dict:
    """Each report carries a new version of the artifact 'app', next to an unchanging 'db'."""
    return server_report(fp(10_000), fp(version), names=["db", "app"])


def assert_history_is_every_report_in_order(org, ids: list[int]) -> None:
    """One snapshot per accepted (changed) report, numbered in acceptance order, each at its report's
    own time, and the final state is the last report's."""
    assert [outcome_of(i).status for i in ids] == ["snapshot"] * len(ids)
    snapshots = list(Snapshot.objects.order_by("index"))
    assert [(s.index, s.report_id) for s in snapshots] == [(n, i) for n, i in enumerate(ids, 1)]
    received = dict(Report.objects.values_list("id", "received_at"))
    assert [s.created_at for s in snapshots] == [received[i] for i in ids]
    assert ReportOutcome.objects.count() == len(ids)
    latest = selectors.snapshot_artifacts(snapshots[-1])
    assert {(a["name"], a["fingerprint"]) for a in latest} == {("db", fp(10_000)), ("app", fp(len(ids)))}
    assert verify_journal(org) is None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sixty_reports_through_kill_9_broker_loss_and_two_workers_all_become_history_in_order(
        org, agent, private_broker, tmp_path):
    """The fault test of the issue: 60 reports to one environment, each a new version of one artifact, two
    workers racing on it. The worker ingesting report 15 is killed (-9) in the middle of it and
    restarted; the broker dies at 30 and comes back empty at 40; it dies again at 56 and comes back
    empty after the last report, so only the real sweeper (celery beat, grace period shortened) can
    bring in the last five."""
    sweeper = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{private_broker['port']}/0",
               "CSM_SWEEP_INTERVAL_SECONDS": "1", "CSM_SWEEP_GRACE_SECONDS": "2"}
    marker = tmp_path / "ingest-paused"
    marker.touch()  # the pause hook stays disarmed while the file exists
    pausable = {**sweeper, PAUSE_ENV: str(marker)}
    processes, ids = [], []

    def report(versions):
        for version in versions:
            response = put_report(agent, version_report(version))
            assert response.status_code == 201
            ids.append(response.json()["id"])

    try:
        processes += [_beat(sweeper, tmp_path), _worker(pausable), _worker(pausable)]
        report(range(1, 15))
        # Deadlines for real processes only (a worker start imports the whole project): never a timing assertion.
        wait_for(lambda: all(outcome_of(i) for i in ids), limit=180, what="reports 1-14 to be ingested")
        marker.unlink()  # armed: whichever worker ingests report 15 pauses in it, its rows written
        report([15])
        paused = int(wait_for(lambda: marker.exists() and marker.read_text(), what="a worker to pause in report 15"))
        os.kill(paused, signal.SIGKILL)
        next(p for p in processes if p.pid == paused).wait(timeout=30)
        wait_for(lambda: not _env_locked(), what="PostgreSQL to roll back the killed worker's transaction")
        processes.append(_worker(pausable))  # restarted (the marker exists again: no second pause)
        report(range(16, 30))
        _broker_down(private_broker)
        report(range(30, 40))  # accepted and stored; their messages cannot be published
        _broker_back_empty(private_broker)
        report(range(40, 56))
        _broker_down(private_broker)
        report(range(56, 61))
        _broker_back_empty(private_broker)  # nothing will ever publish 56-60 again but the sweeper
        wait_for(lambda: outcome_of(ids[-1]), limit=180, what="the sweeper to bring in the last reports")
    finally:
        for process in processes:
            _stop(process)
    assert len(ids) == 60
    assert_history_is_every_report_in_order(org, ids)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_over_shuffled_redeliveries_ingest_each_report_once_in_order(
        org, agent, owner_api, private_broker):
    """Reports accepted while no worker runs; their messages are lost and then re-sent newest first, each
    twice (the sweeper and a late redelivery); two workers start together. Afterwards `@{time}` between
    two reports reads the earlier one's snapshot: each snapshot kept its report's time."""
    import redis

    from snapshots.tasks import ingest_report_task

    ids = [put_report(agent, version_report(version)).json()["id"] for version in range(1, 31)]
    redis.Redis(port=private_broker["port"]).flushdb()  # the broker lost every message
    for report_id in reversed(ids):
        for _ in range(2):
            ingest_report_task.apply_async(args=[report_id])
    broker = {"CELERY_BROKER_URL": f"redis://127.0.0.1:{private_broker['port']}/0"}
    workers = [_worker(broker), _worker(broker)]
    try:
        wait_for(lambda: all(outcome_of(i) for i in ids), limit=180, what="every report to be ingested")
        wait_for(lambda: ingest_backlog() == 0, what="the duplicate messages to be consumed")
    finally:
        for worker in workers:
            _stop(worker)
    assert_history_is_every_report_in_order(org, ids)
    received = [Report.objects.get(pk=i).received_at for i in ids]
    for number in (1, 7, 29):
        between = received[number - 1] + (received[number] - received[number - 1]) / 2
        answer = owner_api.get(f"/api/v2/snapshots/acme/prod/{quote('@{' + between.isoformat() + '}')}")
        assert answer.status_code == 200
        assert answer.json()["index"] == number


@pytest.mark.django_db(transaction=True)
def test_an_ingest_in_progress_locks_its_environment_not_its_org(org, agent, tmp_path):
    """An ingest holds its environment's row to commit (reports of one environment are ingested one at a
    time), never its org's row: that would make every other environment of the org wait for the whole
    transaction, canonicalising included (bench/journal_throughput.py measured 6.7 of 8 ingest
    processes of one org waiting on it)."""
    from snapshots.models import Environment

    marker = tmp_path / "ingest-paused"
    put_report(agent, server_report(*[fp(i) for i in range(1, 20)]))
    worker = _worker({PAUSE_ENV: str(marker)})
    try:
        wait_for(marker.exists, what="the worker to reach the middle of ingest")
        env = Environment.objects.get(org=org, name="prod")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT id FROM tenants_org WHERE id = %s FOR NO KEY UPDATE NOWAIT", [org.pk])
            with pytest.raises(DatabaseError, match="could not obtain lock"), transaction.atomic():
                cursor.execute("SELECT id FROM snapshots_environment WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                               [env.pk])
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        wait_for(lambda: not _env_locked(), what="PostgreSQL to roll back the killed worker's transaction")
