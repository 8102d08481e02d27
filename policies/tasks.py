"""Celery tasks of the policies app: re-evaluation and allowlist expiry. Tasks take ids, re-read rows
and are idempotent (re-evaluating twice appends at most one snapshot: the second finds no difference)."""

from celery import shared_task

from audit.context import AuditContext


@shared_task(name="policies.reevaluate_environment", bind=True, max_retries=5, acks_late=True)
def reevaluate_environment(self, environment_id: int, reason: str, ctx_dict: dict | None = None):
    from .services import reevaluate

    try:
        snapshot = reevaluate(environment_id, reason, AuditContext.from_dict(ctx_dict))
    except Exception as exc:  # the database or a lock timeout: try again with backoff and jitter
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries) + self.request.retries % 3) from exc
    return snapshot.pk if snapshot is not None else None


@shared_task(name="policies.handle_expired_allowlist_entries")
def handle_expired_allowlist_entries():
    from .services import handle_expired_allowlist_entries as handle

    return handle()


@shared_task(name="policies.reevaluate_after_vex", bind=True, max_retries=5, acks_late=True)
def reevaluate_after_vex(self, attestation_id: int):
    """A VEX attestation arrived: store its statements, then re-evaluate where its artifact runs."""
    from .hooks import reevaluate_after_vex as reevaluate

    try:
        return reevaluate(attestation_id)
    except Exception as exc:  # the database or a lock timeout: try again with backoff and jitter
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries) + self.request.retries % 3) from exc


@shared_task(name="policies.recheck_grace_periods")
def recheck_grace_periods():
    """Periodic: decisions whose vulnerability grace period ended are taken again."""
    from .services import recheck_grace_periods as recheck

    return recheck()


@shared_task(name="policies.evaluate_trail_gates", bind=True, max_retries=5, acks_late=True)
def evaluate_trail_gates(self, trail_id: int, ctx_dict: dict | None = None):
    """Evaluate the Rego gates of a trail's flow and record the decisions that changed (idempotent: a
    decision already recorded for the same policy version and input is not recorded again)."""
    from .gates import evaluate_trail_gates as evaluate

    try:
        recorded = evaluate(trail_id, AuditContext.from_dict(ctx_dict) if ctx_dict else AuditContext.system(
            "policy gate"))
    except Exception as exc:  # the database: try again with backoff
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries)) from exc
    return [attestation.pk for attestation in recorded]
