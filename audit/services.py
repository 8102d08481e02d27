"""Writes to the journal and the audit trail. Every service function elsewhere that changes data
calls ``record_event`` inside its own transaction, so the change and its audit row commit together."""

from django.db import transaction
from django.utils import timezone

from audit.canonical import GENESIS_HASH, canonical_json, leaf_hash, normalize
from audit.choices import AuditAction, LeafKind
from audit.context import AuditContext
from audit.models import AuditEvent, JournalHead, JournalLeaf


def _locked_head(org) -> JournalHead:
    head = JournalHead.objects.select_for_update().filter(org=org).first()
    if head is None:
        JournalHead.objects.get_or_create(org=org)
        head = JournalHead.objects.select_for_update().get(org=org)
    return head


def leaf_payload(org, index: int, prev: str, kind: str, data: dict, time) -> bytes:
    return canonical_json({"index": index, "prev": prev, "kind": kind, "org": org.slug, "time": time, "data": data})


@transaction.atomic
def append_leaf(org, kind: str, data: dict, object_id: str = "", time=None) -> JournalLeaf:
    """Append one leaf to ``org``'s journal (locks the journal head: gap-free, linear chain)."""
    head = _locked_head(org)
    time = time or timezone.now()
    index = head.last_index + 1
    prev = head.last_hash or GENESIS_HASH
    payload = leaf_payload(org, index, prev, kind, data, time)
    leaf = JournalLeaf.objects.create(
        org=org, index=index, kind=kind, object_id=str(object_id), payload=payload.decode(),
        leaf_hash=leaf_hash(payload), prev_hash=prev, created_at=time,
    )
    head.last_index = index
    head.last_hash = leaf.leaf_hash
    head.save(update_fields=["last_index", "last_hash"])
    return leaf


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
    head = _locked_head(org)
    now = timezone.now()
    event = AuditEvent(
        org=org,
        seq=head.last_audit_seq + 1,
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
    JournalHead.objects.filter(pk=head.pk).update(last_audit_seq=event.seq)
    return event


def record_denied_access(ctx: AuditContext, org, permission: str, path: str) -> None:
    """Record a refused attempt in its own transaction: the request itself is about to fail."""
    with transaction.atomic():
        record_event(ctx, org, AuditAction.ACCESS_DENIED, target=("path", "", path),
                     after={"permission": permission, "path": path})
