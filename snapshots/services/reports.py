"""Accepting reports: the durable outbox. ``accept_report`` validates the body and stores the Report row
(raw body, SHA-256, idempotency key, reporter) in one transaction, then enqueues its ingest on commit;
the sweeper re-enqueues what is still pending, so a lost broker message loses nothing."""

import hashlib
import logging
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
from csm.metrics import REPORTS_ACCEPTED, SWEEPER_RESENDS
from identity.activity import note_environment_reporter
from snapshots.choices import ReportStatus
from snapshots.models import Environment, Report
from snapshots.report_bodies import validate_report_body
from snapshots.storage import insert_report

log = logging.getLogger(__name__)


class IdempotencyConflict(ServiceError):
    def __init__(self, key: str):
        super().__init__(f"Idempotency-Key {key!r} was already used with a different body.",
                         "Idempotency-Key", 422, "idempotency_key_reused")


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


@transaction.atomic  # nestable: tests/snapshots/test_ordering.py holds it open to play a slow request
def accept_report(ctx: AuditContext, env: Environment, report_type: str, raw: bytes, idempotency_key: str = "",
                  token=None, *, received_at=None) -> tuple[Report, bool]:
    """Validate and durably store a report, then enqueue its ingest on commit.

    Returns (report, created). A replay with the same ``idempotency_key`` and the same body returns the
    first report (created False); the same key with another body raises ``IdempotencyConflict``.
    Raises ``ReportInvalid`` (snapshots.report_bodies) naming the bad field, ``ServiceError`` for a type
    mismatch or a logical / archived environment.

    ``received_at`` (default: now) backdates the acceptance, and so the snapshot it makes. Only for loading
    a recorded history — the demo org's two weeks (reports/demo.py); the API never passes it. Such reports
    must be accepted in time order per environment (a snapshot is never dated before its predecessor)."""
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
        user_id=ctx.user_id, reporter_label=ctx.actor_label[:255], actor=ctx.to_dict(),
        received_at=received_at or timezone.now(),
    )
    if not idempotency_key:  # no unique key to collide with: no savepoint (two round trips) needed
        insert_report(report)
    elif connection.vendor == "postgresql":  # a key taken meanwhile: nothing inserted, no savepoint needed
        if not insert_report(report, unless_key_taken=True):
            existing = _replay(env, idempotency_key, sha)
            if existing is None:  # the conflicting report is gone again (deleted since): as an INSERT would
                raise IntegrityError(f"report idempotency key {idempotency_key!r} conflicted")
            return existing, False
    else:
        try:
            with transaction.atomic():
                insert_report(report)
        except (IntegrityError, DatabaseIntegrityError):
            existing = _replay(env, idempotency_key, sha)
            if existing is None:
                raise
            return existing, False
    record_event(ctx, env.org, AuditAction.REPORT_RECEIVED, ("report", report.pk, f"{env.name} report"),
                 after={"environment": env.name, "type": report_type, "sha256": sha, "bytes": len(raw),
                        "artifacts": count, "idempotency_key": idempotency_key})
    # A reporter that never reported this environment before is unusual (the first one is learned).
    note_environment_reporter(ctx, env.org, env.pk, env.name)
    transaction.on_commit(lambda: REPORTS_ACCEPTED.labels(report_type).inc())
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


def _replay(env, key: str, sha: str) -> Report | None:
    existing = Report.objects.filter(org_id=env.org_id, environment=env, idempotency_key=key).first()
    if existing is not None and existing.payload_sha256 != sha:
        raise IdempotencyConflict(key)
    return existing


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
    sent = sum(1 for report_id in list(newest) if enqueue_report(report_id))
    SWEEPER_RESENDS.inc(sent)
    return sent
