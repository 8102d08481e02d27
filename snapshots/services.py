"""Every write of the snapshot journal: environments, accepting reports, ingesting them, re-evaluation
snapshots and the pending-report sweeper. Each is one transaction that records its audit event."""

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from psycopg import IntegrityError as DatabaseIntegrityError

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from journal.canonical import GENESIS_HASH, canonical_json
from journal.choices import LeafKind
from journal.services import append_leaf
from snapshots import hooks
from snapshots.choices import Annotation, EnvironmentType, EventKind, ReportStatus, SnapshotReason
from snapshots.ingest import canonicalize_body, instances_json, validate_report_body
from snapshots.models import Environment, Report, ReportOutcome, Snapshot, SnapshotEntry, SnapshotEvent

log = logging.getLogger(__name__)

# Test-only hook (documented in docs/snapshots.md): when set to a file path, ingest creates that file
# once its rows are written and then pauses inside its transaction, so a test can kill -9 the worker
# mid-ingest deterministically. Never set in production.
PAUSE_ENV = "CSM_TEST_INGEST_PAUSE_FILE"


class IdempotencyConflict(ServiceError):
    def __init__(self, key: str):
        super().__init__(f"Idempotency-Key {key!r} was already used with a different body.",
                         "Idempotency-Key", 422, "idempotency_key_reused")


# --- Environments ------------------------------------------------------------------------------------

# Who may change an existing environment's settings (tenants/permissions.py); the API view decides.
EDIT_PERMISSION = "environments.edit"

def environment_state(env: Environment) -> dict:
    return {
        "name": env.name, "type": env.type, "description": env.description, "tags": env.tags,
        "include_scaling": env.include_scaling, "archived": env.archived,
        "expected_report_interval_seconds": env.expected_report_interval_seconds,
        "included_environments": sorted(e.name for e in env.included_environments.all()) if env.pk else [],
    }


def _members(org, env_type: str, names) -> list[Environment]:
    if names is None:
        return None
    if env_type != EnvironmentType.LOGICAL:
        if names:
            raise ServiceError("Only a logical environment includes other environments.", "included_environments")
        return []
    found = {e.name: e for e in Environment.objects.for_org(org).filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ServiceError(f"No such environment(s): {', '.join(missing)}.", "included_environments")
    nested = [n for n in names if found[n].is_logical]
    if nested:
        raise ServiceError(f"A logical environment cannot include logical ones: {', '.join(nested)}.",
                           "included_environments")
    return list(found.values())


@transaction.atomic(durable=True)
def create_or_update_environment(ctx: AuditContext, org, name: str, env_type: str, description: str = "",
                                 include_scaling: bool | None = None, included_environments=None,
                                 tags: dict | None = None,
                                 expected_report_interval_seconds: int | None = None,
                                 may_change_existing: bool = True) -> tuple[Environment, bool]:
    """Create environment ``name`` or update it (idempotent: no change, no audit event).

    Changing the type of an environment that has snapshots is refused (its history would lie). With
    ``may_change_existing=False`` (a caller without ``environments.edit``, e.g. a snapshotter) only a
    missing environment may be created or an existing one re-sent unchanged; any change is a 403, so a
    reporting agent cannot, say, set a ten-year report interval that silences the agent-silent alert."""
    env = Environment.objects.for_org(org).select_for_update().filter(name=name).first()
    members = _members(org, env_type, included_environments)
    if env is None:
        env = Environment(org=org, name=name, type=env_type)
        env.full_clean(exclude=["org", "included_environments"])
        created, before = True, None
    else:
        if env.type != env_type and env.last_snapshot_index:
            raise ServiceError(f"Environment {name!r} is of type {env.type} and has snapshots; its type cannot "
                               "change.", "type", 409, "conflict")
        created, before = False, environment_state(env)
    env.type = env_type
    env.description = description or ""
    if include_scaling is not None:
        env.include_scaling = include_scaling
    if tags is not None:
        env.tags = tags
    if expected_report_interval_seconds is not None:
        env.expected_report_interval_seconds = expected_report_interval_seconds
    env.save()
    if members is not None:
        env.included_environments.set(members)
    after = environment_state(env)
    if not created and before != after and not may_change_existing:
        changed = sorted(key for key in after if before.get(key) != after[key])
        raise ServiceError(f"Changing an existing environment ({', '.join(changed)}) needs the permission "
                           f"'{EDIT_PERMISSION}'; your role may only create missing environments or re-send "
                           "their settings unchanged.", "", 403, "permission_denied")
    if before != after:
        action = AuditAction.ENVIRONMENT_CREATED if created else AuditAction.ENVIRONMENT_UPDATED
        record_event(ctx, org, action, env, before=before, after=after)
    return env, created


@transaction.atomic(durable=True)
def set_environment_archived(ctx: AuditContext, env: Environment, archived: bool) -> Environment:
    """Archive or unarchive an environment (deleting one archives it: journal rows are never destroyed)."""
    env = Environment.objects.select_for_update().get(pk=env.pk)
    if env.archived != archived:
        env.archived = archived
        env.save(update_fields=["archived"])
        action = AuditAction.ENVIRONMENT_ARCHIVED if archived else AuditAction.ENVIRONMENT_UNARCHIVED
        record_event(ctx, env.org, action, env, before={"archived": not archived}, after={"archived": archived})
    return env


# --- Accepting reports -------------------------------------------------------------------------------

def report_answer(report: Report) -> dict:
    """The answer to a report PUT; a replay with the same Idempotency-Key gets the same answer."""
    return {"id": report.pk, "environment": report.environment.name, "type": report.type,
            "sha256": report.payload_sha256, "received_at": report.received_at, "artifacts": report.entry_count,
            "status": ReportStatus.PENDING}


def enqueue_report(report_id: int) -> bool:
    """Publish the ingest task. Redis is only a delivery mechanism: when publishing fails the report
    stays pending in PostgreSQL and the sweeper re-enqueues it, so the error is logged, not raised."""
    from snapshots.tasks import ingest_report_task

    try:
        ingest_report_task.apply_async(args=[report_id])
        return True
    except Exception:
        log.warning("could not enqueue report %s; the sweeper will retry it", report_id, exc_info=True)
        return False


@transaction.atomic(durable=True)
def accept_report(ctx: AuditContext, env: Environment, report_type: str, raw: bytes, idempotency_key: str = "",
                  token=None) -> tuple[Report, bool]:
    """Validate and durably store a report, then enqueue its ingest on commit.

    Returns (report, created). A replay with the same ``idempotency_key`` and the same body returns the
    first report (created False); the same key with another body raises ``IdempotencyConflict``.
    Raises ``ReportInvalid`` (snapshots.ingest) naming the bad field, ``ServiceError`` for a type
    mismatch or a logical / archived environment."""
    sha = hashlib.sha256(raw).hexdigest()
    if idempotency_key:
        existing = _replay(env, idempotency_key, sha)
        if existing is not None:
            return existing, False
    if env.is_logical:
        raise ServiceError("A logical environment receives no reports; report to its member environments.", "type")
    if report_type != env.type:
        raise ServiceError(f"Environment {env.name!r} is of type {env.type}, not {report_type}.", "type")
    if env.archived:
        raise ServiceError(f"Environment {env.name!r} is archived; unarchive it to report.", "environment", 409,
                           "conflict")
    count = validate_report_body(env.type, raw)
    _lock_acceptance(env.pk)
    report = Report(
        org=env.org, environment=env, type=report_type, payload=raw, payload_sha256=sha, payload_bytes=len(raw),
        entry_count=count, idempotency_key=idempotency_key, token=token,
        service_account_id=getattr(token, "service_account_id", None) or ctx.service_account_id,
        user_id=ctx.user_id, reporter_label=ctx.actor_label[:255], actor=ctx.to_dict(), received_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            _insert_report(report)
    except (IntegrityError, DatabaseIntegrityError):
        existing = _replay(env, idempotency_key, sha) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    record_event(ctx, env.org, AuditAction.REPORT_RECEIVED, ("report", report.pk, f"{env.name} report"),
                 after={"environment": env.name, "type": report_type, "sha256": sha, "bytes": len(raw),
                        "artifacts": count, "idempotency_key": idempotency_key})
    transaction.on_commit(lambda: enqueue_report(report.pk))
    return report, True


_ACCEPT_LOCK_CLASS = 0x63736E  # next to policies' 0x63736D ("csm"): our advisory lock ids, apart from others'


def _lock_acceptance(environment_id: int) -> None:
    """Accept one report of an environment at a time (until commit), so report ids and received times
    are the environment's acceptance order and commit order: when ingest sees report N, every earlier
    report of the environment is already visible. (The audit event's journal-head lock nearly does this
    already, but a report's id is drawn at its INSERT, before that lock.) An advisory lock, not the
    environment row, so accepting never waits for an ingest in progress. SQLite has a single writer."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_ACCEPT_LOCK_CLASS, environment_id])


def _insert_report(report: Report) -> None:
    """INSERT the report. On PostgreSQL the body goes as a binary parameter with server-side binding:
    Django's client-side binding would inline a 50 MB body as a 100 MB hex literal."""
    if connection.vendor != "postgresql":
        report.save(force_insert=True)
        return
    import psycopg

    fields = [f for f in Report._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(getattr(report, f.attname), connection) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join("%b" if f.name == "payload" else "%s" for f in fields)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"INSERT INTO snapshots_report ({columns}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
                       values)
        report.pk = cursor.fetchone()[0]
    report._state.adding = False


def _replay(env, key: str, sha: str) -> Report | None:
    existing = Report.objects.filter(org_id=env.org_id, environment=env, idempotency_key=key).first()
    if existing is not None and existing.payload_sha256 != sha:
        raise IdempotencyConflict(key)
    return existing


# --- Ingest -----------------------------------------------------------------------------------------

@dataclass
class Running:
    """An open entry of the latest snapshot."""

    entry_id: int
    count: int
    running_since: object


def artifacts_digest(counts: dict[tuple[str, str], int]) -> str:
    """SHA-256 of the sorted (name, fingerprint, count) lines: the identity of an artifact set."""
    digest = hashlib.sha256()
    for (name, fingerprint), count in sorted(counts.items()):
        digest.update(f"{name}\t{fingerprint}\t{count}\n".encode())
    return digest.hexdigest()


def _append_snapshot(ctx: AuditContext, env: Environment, when, reason: str, counts_digest: str,
                     artifact_count: int, instance_count: int, changes: dict, report: Report | None) -> Snapshot:
    snapshot = Snapshot(
        org_id=env.org_id, environment=env, index=env.last_snapshot_index + 1, created_at=when, reason=reason,
        report=report, reporter_label=ctx.actor_label[:255], token_id=ctx.token_id, artifact_count=artifact_count,
        instance_count=instance_count, started_count=changes.get("started", 0),
        exited_count=changes.get("exited", 0), scaled_count=changes.get("scaled", 0),
        artifacts_digest=counts_digest, prev_hash=env.last_snapshot_hash or GENESIS_HASH,
    )
    data = snapshot.journal_data()
    snapshot.hash = hashlib.sha256(canonical_json(data)).hexdigest()
    snapshot.leaf = append_leaf(env.org, LeafKind.SNAPSHOT, {**data, "hash": snapshot.hash},
                                object_id=f"{env.pk}#{snapshot.index}", time=when)
    snapshot.save(force_insert=True)
    record_event(ctx, env.org, AuditAction.SNAPSHOT_CREATED, ("snapshot", snapshot.pk, f"{env.name}#{snapshot.index}"),
                 after={"environment": env.name, "index": snapshot.index, "reason": reason,
                        "hash": snapshot.hash, **changes})
    env.last_snapshot_index = snapshot.index
    env.last_snapshot_at = when
    env.last_snapshot_hash = snapshot.hash
    env.current_artifact_count = artifact_count
    return snapshot


def _copy_rows(model, columns: list[str], rows) -> None:
    """Bulk insert: PostgreSQL ``COPY`` (psycopg 3), else executemany."""
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # noqa: S608
                for row in rows:
                    copy.write_row(row)
        return
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608
                           list(rows))


def _close_entries(entry_ids: list[int], index: int) -> None:
    if not entry_ids:
        return
    table = SnapshotEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"UPDATE {table} SET to_index = %s WHERE id = ANY(%s) AND to_index IS NULL",  # noqa: S608
                           [index, entry_ids])
        else:
            for start in range(0, len(entry_ids), 500):
                chunk = entry_ids[start:start + 500]
                cursor.execute(f"UPDATE {table} SET to_index = %s WHERE to_index IS NULL AND id IN "  # noqa: S608
                               f"({', '.join(['%s'] * len(chunk))})", [index, *chunk])


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


def _open_entries(env: Environment) -> dict[tuple[str, str], Running]:
    rows = SnapshotEntry.objects.filter(environment=env, to_index__isnull=True).values_list(
        "id", "name", "fingerprint", "instance_count", "running_since")
    return {(name, fp): Running(pk, count, since) for pk, name, fp, count, since in rows.iterator(chunk_size=20000)}


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
        environment_id = Report.objects.filter(pk=report_id).values_list("environment_id", flat=True).first()
        if environment_id is None:
            return None
        env = Environment.objects.select_for_update(no_key=True).select_related("org").get(pk=environment_id)
        existing = ReportOutcome.objects.filter(report_id=report_id).first()
        if existing is not None:
            return existing, None, None, True
        if report_id <= env.last_ingested_report_id:
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
        outcome, snapshot = _ingest_locked(ctx, env, report)
    return outcome, snapshot, ctx, report.pk == report_id


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
    snapshot = _append_snapshot(ctx, env, max(report.received_at, env.last_snapshot_at or report.received_at),
                                SnapshotReason.REPORT, artifacts_digest(counts), len(counts), sum(counts.values()),
                                changes, report)
    index, when = snapshot.index, snapshot.created_at
    _close_entries([current[key].entry_id for key in exited + scaled], index)
    _copy_rows(
        SnapshotEntry,
        ["org_id", "environment_id", "name", "fingerprint", "instance_count", "instances", "running_since",
         "from_index", "change"],
        (
            (env.org_id, env.pk, name, fp, counts[(name, fp)], instances_json(running[(name, fp)]),
             current[(name, fp)].running_since if change == Annotation.SCALED else when, index, change)
            for change, keys in ((Annotation.STARTED, started), (Annotation.SCALED, scaled))
            for name, fp in keys
        ),
    )
    _copy_rows(
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
        env = Environment.objects.select_for_update(no_key=True).select_related("org").get(pk=environment.pk)
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


def pending_reports(min_age_seconds: int = 0):
    """Reports without an outcome received at least ``min_age_seconds`` ago, oldest first."""
    cutoff = timezone.now() - timedelta(seconds=min_age_seconds)
    return Report.objects.filter(outcome__isnull=True, received_at__lte=cutoff).order_by("received_at")


def ingest_backlog() -> int | None:
    """Messages waiting in the ingest queue, or None when the broker cannot tell (e.g. it is down)."""
    from snapshots.tasks import ingest_report_task

    app = ingest_report_task.app
    if app.conf.task_always_eager:
        return 0
    from amqp.exceptions import ChannelError

    queue = app.conf.task_routes.get(ingest_report_task.name, {}).get("queue") or app.conf.task_default_queue
    try:
        with app.connection_for_read() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # 404: the queue does not even exist, so nothing is waiting
        return 0
    except Exception:
        log.info("could not read the ingest queue length", exc_info=True)
        return None


def sweep_pending_reports(min_age_seconds: int | None = None, limit: int = 1000) -> int:
    """Re-enqueue pending reports (a lost Redis message loses nothing): per environment, its newest
    report pending for at least ``min_age_seconds`` (default ``CSM_SWEEP_GRACE_SECONDS``), whose ingest
    first ingests every earlier pending report of the environment, in order. Returns how many were
    published.

    Skipped while the ingest queue still holds messages: a backlog is slow, not lost, and re-publishing
    it every minute would only pile up duplicates (harmless: ingest is idempotent, but wasted work)."""
    if min_age_seconds is None:
        min_age_seconds = settings.CSM_SWEEP_GRACE_SECONDS
    if ingest_backlog():
        return 0
    newest = (pending_reports(min_age_seconds).order_by().values("environment_id").annotate(newest=Max("id"))
              .order_by("newest").values_list("newest", flat=True)[:limit])
    return sum(1 for report_id in list(newest) if enqueue_report(report_id))
