"""Writes to the audit trail. Every service function elsewhere that changes data calls
``record_event`` inside its own transaction, so the change and its audit row commit together."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from journal.canonical import normalize
from journal.choices import LeafKind
from journal.services import append_leaf, locked_head


def _target_fields(target) -> dict:
    if target is None:
        return {"target_type": "", "target_id": "", "target_label": ""}
    if isinstance(target, tuple):
        kind, pk, label = target
        return {"target_type": kind, "target_id": str(pk), "target_label": str(label)[:255]}
    return {
        "target_type": target._meta.model_name,
        "target_id": str(target.pk),
        "target_label": str(target)[:255],
    }


@transaction.atomic
def record_event(
    ctx: AuditContext,
    org,
    action: AuditAction | str,
    target=None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Record an audit event and its journal leaf. ``target`` is a model instance or (type, id, label)."""
    locked_head(org)  # audit numbering is gap-free under the journal's lock
    now = timezone.now()
    last_seq = AuditEvent.objects.filter(org=org).aggregate(last=Max("seq"))["last"] or 0
    event = AuditEvent(
        org=org,
        seq=last_seq + 1,
        action=str(action),
        actor_type=ctx.actor_type,
        actor_user_id=ctx.user_id,
        actor_service_account_id=ctx.service_account_id,
        actor_token_id=ctx.token_id,
        actor_label=ctx.actor_label[:255],
        before=normalize(before) if before is not None else None,
        after=normalize(after) if after is not None else None,
        request_id=ctx.request_id,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
        created_at=now,
        **_target_fields(target),
    )
    event.leaf = append_leaf(org, LeafKind.AUDIT_EVENT, event.canonical_data(), time=now)
    event.save(force_insert=True)
    return event


def record_denied_access(ctx: AuditContext, org, permission: str, path: str) -> None:
    """Record a refused attempt in its own transaction: the request itself is about to fail."""
    with transaction.atomic():
        record_event(ctx, org, AuditAction.ACCESS_DENIED, target=("path", "", path),
                     after={"permission": permission, "path": path})
