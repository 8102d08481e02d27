"""Every accepted report becomes history in acceptance order, exactly once (in-process; the same guarantee
against real workers, kill -9 and broker loss is in test_durability.py)."""

import json
import threading

import pytest
from django.db import connection, connections, transaction

from journal.verify import verify_journal
from snapshots import selectors
from snapshots.models import Report, ReportOutcome, Snapshot
from snapshots.services.ingest import append_reevaluation_snapshot, ingest_report
from snapshots.services.reports import accept_report, pending_reports
from tests.snapshots.conftest import fp, server_report


def _accept(ctx, env, version: int) -> Report:
    """A report in which artifact 'app' runs its version ``version`` next to an unchanging 'db'."""
    raw = json.dumps(server_report(fp(10_000), fp(version), names=["db", "app"])).encode()
    report, _ = accept_report(ctx, env, env.type, raw)
    return report


@pytest.mark.django_db
def test_ingesting_a_later_report_first_ingests_every_earlier_pending_one_in_order(
        make_env, ctx, django_capture_on_commit_callbacks):
    """The messages of reports 1-4 were lost (broker outage); report 5's arrives first."""
    env = make_env()
    with django_capture_on_commit_callbacks(execute=False):
        reports = [_accept(ctx, env, version) for version in range(1, 6)]
    outcome = ingest_report(reports[-1].pk)
    assert (outcome.status, outcome.snapshot.index) == ("snapshot", 5)
    snapshots = list(Snapshot.objects.filter(environment=env).order_by("index"))
    assert [(s.index, s.report_id) for s in snapshots] == [(i, r.pk) for i, r in enumerate(reports, 1)]
    # Each snapshot sits at the moment its report was accepted, not when the worker got to it.
    assert [s.created_at for s in snapshots] == [r.received_at for r in reports]
    assert [a["fingerprint"] for a in selectors.snapshot_artifacts(snapshots[1]) if a["name"] == "app"] == [fp(2)]
    # The late messages of reports 1-4 find their turn passed: a no-op, nothing is written twice.
    for report in reports[:-1]:
        assert ingest_report(report.pk).snapshot.report_id == report.pk
    assert Snapshot.objects.filter(environment=env).count() == 5
    assert ReportOutcome.objects.filter(report__environment=env).count() == 5
    assert verify_journal(env.org) is None


@pytest.mark.django_db
def test_a_drain_stops_at_the_report_it_was_given_and_leaves_later_ones_to_their_turn(
        make_env, ctx, django_capture_on_commit_callbacks):
    env = make_env()
    with django_capture_on_commit_callbacks(execute=False):
        reports = [_accept(ctx, env, version) for version in range(1, 5)]
    assert ingest_report(reports[1].pk).snapshot.index == 2
    assert list(pending_reports().values_list("id", flat=True)) == [r.pk for r in reports[2:]]
    assert ingest_report(reports[3].pk).snapshot.index == 4
    assert [s.report_id for s in Snapshot.objects.filter(environment=env).order_by("index")] == [
        r.pk for r in reports]


@pytest.mark.django_db
def test_unchanged_reports_in_a_backlog_stay_heartbeats_in_their_place(
        make_env, ctx, django_capture_on_commit_callbacks):
    env = make_env()
    with django_capture_on_commit_callbacks(execute=False):
        reports = [_accept(ctx, env, version) for version in (1, 1, 2, 2, 1)]
    ingest_report(reports[-1].pk)
    statuses = [ReportOutcome.objects.get(report=r).status for r in reports]
    assert statuses == ["snapshot", "unchanged", "snapshot", "unchanged", "snapshot"]
    assert [s.report_id for s in Snapshot.objects.filter(environment=env).order_by("index")] == [
        reports[0].pk, reports[2].pk, reports[4].pk]


@pytest.mark.django_db
def test_time_travel_after_an_outage_reads_each_report_at_its_own_moment(
        make_env, ctx, django_capture_on_commit_callbacks):
    env = make_env()
    with django_capture_on_commit_callbacks(execute=False):
        reports = [_accept(ctx, env, version) for version in range(1, 4)]
    ingest_report(reports[-1].pk)  # the worker comes back after all three were accepted
    env.refresh_from_db()
    for number, (report, following) in enumerate(zip(reports, reports[1:]), 1):
        between = report.received_at + (following.received_at - report.received_at) / 2
        assert selectors.resolve_snapshot(env, "@{" + between.isoformat() + "}").index == number


@pytest.mark.django_db(transaction=True)
def test_a_report_accepted_during_another_accept_of_the_environment_queues_behind_it(make_env, ctx):
    """Two agents (or a retry) report to one environment at once and a worker picks up the second report
    at once: the first one, committed just before it, is still ingested first, not lost."""
    env = make_env()
    first_stored, release, errors = threading.Event(), threading.Event(), []
    second = {}

    def first_agent():
        try:
            with transaction.atomic():  # a slow request: the report is stored, the transaction still open
                second["first"] = _accept(ctx, env, 1)
                first_stored.set()
                release.wait(60)
        except Exception as error:  # asserted below
            errors.append(error)
        finally:
            connections.close_all()

    def second_agent():
        try:
            second["report"] = _accept(ctx, env, 2)
            second["outcome"] = ingest_report(second["report"].pk)  # a worker picks it up at once
        except Exception as error:  # asserted below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_agent)]
    threads[0].start()
    assert first_stored.wait(60)
    threads.append(threading.Thread(target=second_agent))
    threads[1].start()
    _wait_until(lambda: "outcome" in second or _second_agent_waits())
    release.set()
    for thread in threads:
        thread.join(60)
    assert errors == []
    first_report, second_report = second["first"], second["report"]
    assert second_report.received_at > first_report.received_at
    ingest_report(first_report.pk)
    assert [(s.index, s.report_id) for s in Snapshot.objects.filter(environment=env).order_by("index")] == [
        (1, first_report.pk), (2, second_report.pk)]
    assert ReportOutcome.objects.get(report=first_report).status == "snapshot"


def _second_agent_waits() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def _wait_until(predicate, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.django_db
def test_a_reevaluation_during_a_backlog_comes_after_the_reports_accepted_before_it(
        make_env, ctx, django_capture_on_commit_callbacks):
    env = make_env()
    with django_capture_on_commit_callbacks(execute=False):
        first = _accept(ctx, env, 1)
        ingest_report(first.pk)
        backlog = [_accept(ctx, env, version) for version in (2, 3)]  # no worker ran them yet
    reevaluation = append_reevaluation_snapshot(ctx, env, "policy changed")
    snapshots = list(Snapshot.objects.filter(environment=env).order_by("index"))
    assert [(s.index, s.report_id) for s in snapshots] == [
        (1, first.pk), (2, backlog[0].pk), (3, backlog[1].pk), (4, None)]
    assert [s.created_at for s in snapshots[:3]] == [first.received_at] + [r.received_at for r in backlog]
    assert reevaluation.index == 4 and reevaluation.artifacts_digest == snapshots[2].artifacts_digest
