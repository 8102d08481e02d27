"""Ingesting accepted reports into the snapshot journal, strictly in acceptance order: the change-only
rule (a new snapshot only when the running set changed), entries with validity ranges, events, the
journal leaf and the audit event, one transaction per report (a change outside the environment's change
windows is marked on the snapshot and flagged as unusual activity in it too); re-evaluation snapshots."""

import hashlib
import logging
import os
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Subquery
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.logs import log_context
from csm.metrics import INGEST_LAG, REPORTS_INGESTED
from identity.activity import UnusualKind, flag_unusual
from journal.canonical import GENESIS_HASH, canonical_json
from journal.choices import LeafKind
from journal.services import append_leaf
from snapshots import hooks
from snapshots.change_windows import describe_windows, local_time_label, within_change_windows
from snapshots.choices import Annotation, EventKind, ReportStatus, SnapshotReason
from snapshots.models import Environment, Report, ReportOutcome, Snapshot, SnapshotEntry, SnapshotEvent
from snapshots.report_bodies import canonicalize_body, instances_json
from snapshots.storage import close_entries, copy_rows

# Test-only hook (documented in docs/snapshots.md): when set to a file path, ingest creates that file
# once its rows are written and then pauses inside its transaction, so a test can kill -9 the worker
# mid-ingest deterministically. Never set in production.
PAUSE_ENV = "CSM_TEST_INGEST_PAUSE_FILE"

log = logging.getLogger(__name__)


@dataclass
class Running:
    """An open entry of the latest snapshot (its running_since is read only when it scales: see
    ``_running_since``)."""

    entry_id: int
    count: int


def artifacts_digest(counts: dict[tuple[str, str], int]) -> str:
    """SHA-256 of the sorted (name, fingerprint, count) lines: the identity of an artifact set."""
    digest = hashlib.sha256()
    for (name, fingerprint), count in sorted(counts.items()):
        digest.update(f"{name}\t{fingerprint}\t{count}\n".encode())
    return digest.hexdigest()


def _append_snapshot(ctx: AuditContext, env: Environment, when, reason: str, counts_digest: str,
                     artifact_count: int, instance_count: int, changes: dict, report: Report | None,
                     outside_change_window: bool = False) -> Snapshot:
    snapshot = Snapshot(
        org_id=env.org_id, environment=env, index=env.last_snapshot_index + 1, created_at=when, reason=reason,
        report=report, reporter_label=ctx.actor_label[:255], token_id=ctx.token_id, artifact_count=artifact_count,
        instance_count=instance_count, started_count=changes.get("started", 0),
        exited_count=changes.get("exited", 0), scaled_count=changes.get("scaled", 0),
        artifacts_digest=counts_digest, prev_hash=env.last_snapshot_hash or GENESIS_HASH,
        outside_change_window=outside_change_window,
    )
    data = snapshot.journal_data()
    snapshot.hash = hashlib.sha256(canonical_json(data)).hexdigest()
    snapshot.leaf = append_leaf(env.org, LeafKind.SNAPSHOT, {**data, "hash": snapshot.hash},
                                object_id=f"{env.pk}#{snapshot.index}", time=when)
    snapshot.save(force_insert=True)
    record_event(ctx, env.org, AuditAction.SNAPSHOT_CREATED, ("snapshot", snapshot.pk, f"{env.name}#{snapshot.index}"),
                 after={"environment": env.name, "index": snapshot.index, "reason": reason,
                        "hash": snapshot.hash, **changes,
                        **({"outside_change_window": True} if outside_change_window else {})})
    env.last_snapshot_index = snapshot.index
    env.last_snapshot_at = when
    env.last_snapshot_hash = snapshot.hash
    env.current_artifact_count = artifact_count
    return snapshot


def _payload(report_id: int) -> bytes:
    """The raw body, fetched in binary (a text-format bytea would double it in transit and memory)."""
    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:  # server-side binding: binary results allowed
            cursor.execute("SELECT payload FROM snapshots_report WHERE id = %s", [report_id], binary=True)
            return bytes(cursor.fetchone()[0])
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM snapshots_report WHERE id = %s", [report_id])
        return bytes(cursor.fetchone()[0])


OPEN_ENTRIES_CHUNK = 20000


def _open_entries(env: Environment) -> dict[tuple[str, str], Running]:
    # No running_since: an aware datetime per entry through the driver was a third of this read, and only
    # the entries that scale in a new snapshot need theirs (_running_since).
    rows = SnapshotEntry.objects.filter(environment=env, to_index__isnull=True).values_list(
        "id", "name", "fingerprint", "instance_count")
    # The open entries are the latest snapshot's artifacts (current_artifact_count of them): up to one
    # chunk, one plain query; more, a server-side cursor (DECLARE, FETCH... CLOSE: two round trips more).
    if env.current_artifact_count > OPEN_ENTRIES_CHUNK:
        rows = rows.iterator(chunk_size=OPEN_ENTRIES_CHUNK)
    return {(name, fp): Running(pk, count) for pk, name, fp, count in rows}


def _running_since(entry_ids: list[int]) -> dict:
    """entry id → running_since, for the open entries that scaled (their successors keep it)."""
    if not entry_ids:
        return {}
    return dict(SnapshotEntry.objects.filter(pk__in=entry_ids).values_list("id", "running_since"))


def _pause_for_tests(env: Environment) -> None:
    marker = os.environ.get(PAUSE_ENV)
    if marker and not os.path.exists(marker):  # once per marker file: the test arms it by removing the file
        with open(marker, "w") as handle:
            handle.write(str(os.getpid()))
        while True:  # killed by the test (kill -9) while holding the transaction open
            time.sleep(0.1)


def _outcome(report: Report, status: str, snapshot: Snapshot | None = None) -> ReportOutcome:
    return ReportOutcome.objects.create(report=report, status=status, snapshot=snapshot)


def ingest_report(report_id: int) -> ReportOutcome | None:
    """Ingest report ``report_id`` and, first, every earlier pending report of its environment, in
    acceptance order (report id), so every accepted report becomes history exactly once, in order.

    Each report is one transaction under the environment row lock (the change-only rule: unchanged
    running set → heartbeat only, ``unchanged``; changed → snapshot N+1 closing the entries that exited
    or scaled and opening the ones that started or scaled, O(k) rows for k changes, events, journal
    leaf and audit event); after each commit the after-snapshot hooks run. A crash mid-drain keeps
    what was committed and the next delivery resumes where it stopped. A report that already has an
    outcome (its turn passed: an earlier drain or delivery ingested it) is left alone, so a second
    delivery changes nothing; two workers draining one environment take turns report by report.
    Returns the outcome of ``report_id``, or None when the report no longer exists."""
    while True:
        step = _ingest_next(report_id)
        if step is None:
            return None
        outcome, snapshot, ctx, done = step
        if snapshot is not None:
            hooks.run_after_snapshot(snapshot.pk, ctx.to_dict())
        if done:
            return outcome


def _ingest_next(report_id: int):
    """One transaction: ingest the environment's next pending report up to ``report_id``.
    Returns (outcome, snapshot or None, ctx, whether ``report_id`` is done), or None if it is gone."""
    with transaction.atomic():
        # The report's environment, found and locked in one statement (none: the report is gone).
        # of=("self",): lock the environment row only. Without it PostgreSQL also locks the joined org
        # row, which serialised every ingest of an org for its whole transaction (bench/journal_throughput.py).
        env = (Environment.objects.select_for_update(no_key=True, of=("self",)).select_related("org")
               .filter(pk=Subquery(Report.objects.filter(pk=report_id).values("environment_id")[:1]))
               .order_by("pk").first())
        if env is None:
            return None
        if report_id <= env.last_ingested_report_id:
            # Its outcome, if any, is at or below the mark: every outcome moves the mark to its report in
            # the same transaction (SUPERSEDED ones are below it already), so above the mark none is looked for.
            existing = ReportOutcome.objects.filter(report_id=report_id).first()
            if existing is not None:
                return existing, None, None, True
            # Only a report stored before ingest followed acceptance order (migration 0007) can be
            # pending behind the mark; ingesting it now would rewind the environment's state.
            report = Report.objects.defer("payload").get(pk=report_id)
            return _outcome(report, ReportStatus.SUPERSEDED), None, None, True
        # Every report above the mark is pending (the mark moves with each outcome, in the same
        # transaction), so the next one is a plain range read of the (environment, id) index.
        report = (Report.objects.defer("payload")
                  .filter(environment_id=env.pk, pk__gt=env.last_ingested_report_id, pk__lte=report_id)
                  .order_by("pk").first())
        ctx = AuditContext.from_dict(report.actor)
        # Log lines of this report name the request that sent it, even when another report's task drains it.
        where = {"report_id": report.pk, "org": env.org.slug, "request_id": ctx.request_id or None}
        with log_context(**where):
            outcome, snapshot = _ingest_locked(ctx, env, report)
        transaction.on_commit(lambda: _ingested(report, env.name, outcome.status, where))
    return outcome, snapshot, ctx, report.pk == report_id


def _ingested(report: Report, environment: str, status: str, where: dict) -> None:
    """After commit: the log line and metrics of an ingest, its lag counted from the report's acceptance."""
    lag = max(0.0, (timezone.now() - report.received_at).total_seconds())
    REPORTS_INGESTED.labels(status).inc()
    INGEST_LAG.observe(lag)
    log.info("report %s of %s ingested: %s, %.3f s after it was accepted", report.pk, environment, status, lag,
             extra={key: value for key, value in where.items() if value})


def _ingest_locked(ctx, env: Environment, report: Report):
    if env.last_snapshot_index and report.payload_sha256 == env.last_ingested_sha256:
        return _heartbeat(env, report, in_sync=True)
    return _ingest_body(ctx, env, report)


def _heartbeat(env: Environment, report: Report, in_sync: bool):
    """Nothing changed: only the environment's last-report time moves."""
    env.last_report_at = max(report.received_at, env.last_report_at or report.received_at)
    env.last_ingested_received_at = report.received_at
    env.last_ingested_report_id = report.pk
    # Stored state equals this body exactly unless scaling was left out of an unchanged report.
    env.last_ingested_sha256 = report.payload_sha256 if in_sync else ""
    env.save(update_fields=["last_report_at", "last_ingested_received_at", "last_ingested_report_id",
                            "last_ingested_sha256"])
    return _outcome(report, ReportStatus.UNCHANGED), None


def _ingest_body(ctx, env: Environment, report: Report):
    """Canonicalize the body (one streaming pass at the C parser's speed), diff it against the open
    entries, and write O(k) rows for k changes with COPY."""
    running = canonicalize_body(env.type, _payload(report.pk))
    counts = {key: len(instances) for key, instances in running.items()}
    current = _open_entries(env)
    started = [key for key in counts if key not in current]
    exited = [key for key in current if key not in counts]
    scaled = [key for key, count in counts.items() if key in current and current[key].count != count]
    if not (started or exited or (env.include_scaling and scaled)):
        return _heartbeat(env, report, in_sync=not scaled)
    changes = {"started": len(started), "exited": len(exited), "scaled": len(scaled)}
    env.last_report_at = max(report.received_at, env.last_report_at or report.received_at)
    env.last_ingested_received_at = report.received_at
    env.last_ingested_report_id = report.pk
    env.last_ingested_sha256 = report.payload_sha256
    # The snapshot carries its report's time (when the agent's observation was accepted), not the
    # time a worker got to it: a report ingested after an outage still sits at its own moment for
    # @{time} reads. Never before the previous snapshot (clock skew between web servers).
    index = env.last_snapshot_index + 1
    when = max(report.received_at, env.last_snapshot_at or report.received_at)
    # The entries (the bulk of the rows) are written before the journal leaf is appended: the org's
    # journal head stays locked from the append to commit, so the other environments of the org wait
    # only for the snapshot, its events and the audit event (bench/journal_throughput.py).
    since = _running_since([current[key].entry_id for key in scaled])
    close_entries([current[key].entry_id for key in exited + scaled], index)
    copy_rows(
        SnapshotEntry,
        ["org_id", "environment_id", "name", "fingerprint", "instance_count", "instances", "running_since",
         "from_index", "change"],
        (
            (env.org_id, env.pk, name, fp, counts[(name, fp)], instances_json(running[(name, fp)]),
             since[current[(name, fp)].entry_id] if change == Annotation.SCALED else when, index, change)
            for change, keys in ((Annotation.STARTED, started), (Annotation.SCALED, scaled))
            for name, fp in keys
        ),
    )
    outside = not within_change_windows(env.change_windows, env.change_window_tz, when)
    snapshot = _append_snapshot(ctx, env, when, SnapshotReason.REPORT, artifacts_digest(counts), len(counts),
                                sum(counts.values()), changes, report, outside_change_window=outside)
    if outside:
        _flag_outside_change_window(ctx, env, snapshot, changes)
    copy_rows(
        SnapshotEvent,
        ["org_id", "environment_id", "snapshot_id", "snapshot_index", "created_at", "kind", "name", "fingerprint",
         "old_count", "new_count"],
        (
            (env.org_id, env.pk, snapshot.pk, index, when, kind, name, fp,
             current[(name, fp)].count if (name, fp) in current else 0, counts.get((name, fp), 0))
            for kind, keys in ((EventKind.STARTED, started), (EventKind.EXITED, exited), (EventKind.SCALED, scaled))
            for name, fp in sorted(keys)
        ),
    )
    _pause_for_tests(env)
    env.save(update_fields=["last_report_at", "last_ingested_received_at", "last_ingested_report_id",
                            "last_ingested_sha256", "last_snapshot_index", "last_snapshot_at", "last_snapshot_hash",
                            "current_artifact_count"])
    return _outcome(report, ReportStatus.SNAPSHOT, snapshot), snapshot


def _flag_outside_change_window(ctx: AuditContext, env: Environment, snapshot: Snapshot, changes: dict) -> None:
    """The change of ``snapshot`` happened outside every change window: unusual activity, in the snapshot's
    transaction (its actor is the reporter of the change)."""
    when = local_time_label(snapshot.created_at, env.change_window_tz)
    flag_unusual(ctx, env.org, UnusualKind.OUTSIDE_CHANGE_WINDOW,
                 f"Change in {env.name} (snapshot #{snapshot.index}) at {when}, outside its change windows",
                 {"environment": env.name, "snapshot": snapshot.index, "at": snapshot.created_at,
                  "local_time": when, "change_windows": describe_windows(env.change_windows, env.change_window_tz),
                  **changes},
                 target=("snapshot", snapshot.pk, f"{env.name}#{snapshot.index}"))


def append_reevaluation_snapshot(ctx: AuditContext, environment: Environment, reason: str) -> Snapshot | None:
    """Append snapshot N+1 with exactly the latest artifact set, to record a re-evaluated state (e.g. the
    policies app re-evaluating compliance after a policy change).

    O(1) rows: no entry is written (open entries stay valid in N+1). Takes the environment row lock
    like ingest, appends the journal leaf and records a ``snapshot.created`` audit event with
    ``reason``; the after-snapshot hooks run after commit. Returns None when the environment has no
    snapshot yet (nothing to re-evaluate) or is logical.

    Reports of the environment still pending (a backlog after an outage) are ingested first: they were
    accepted before this re-evaluation, so their snapshots come before it, each at its own time."""
    _ingest_pending(environment.pk)
    with transaction.atomic():
        env = (Environment.objects.select_for_update(no_key=True, of=("self",)).select_related("org")
               .get(pk=environment.pk))
        if env.is_logical or env.last_snapshot_index == 0:
            return None
        latest = Snapshot.objects.get(environment=env, index=env.last_snapshot_index)
        when = max(timezone.now(), latest.created_at)
        snapshot = _append_snapshot(ctx, env, when, SnapshotReason.REEVALUATION, latest.artifacts_digest,
                                    latest.artifact_count, latest.instance_count, {"reason": reason[:200]}, None)
        env.save(update_fields=["last_snapshot_index", "last_snapshot_at", "last_snapshot_hash",
                                "current_artifact_count"])
    hooks.run_after_snapshot(snapshot.pk, ctx.to_dict())
    return snapshot


def _ingest_pending(environment_id: int) -> None:
    """Ingest every pending report of the environment, in order (a no-op, one indexed query, without)."""
    mark = Environment.objects.filter(pk=environment_id).values_list("last_ingested_report_id", flat=True).first()
    newest = (Report.objects.filter(environment_id=environment_id, pk__gt=mark or 0, outcome__isnull=True)
              .order_by("-pk").values_list("pk", flat=True).first())
    if newest is not None:
        ingest_report(newest)
