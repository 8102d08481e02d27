"""Writes to the audit trail. Every service function elsewhere that changes data calls
``record_event`` inside its own transaction, so the change and its audit row commit together."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from audit.personal import personal_of
from journal.canonical import normalize
from journal.choices import LeafKind
from journal.personal import People, committed, record_refs, scrub
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


@transaction.atomic(savepoint=False)
def record_event(
    ctx: AuditContext,
    org,
    action: AuditAction | str,
    target=None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Record an audit event and its journal leaf. ``target`` is a model instance or (type, id, label).

    No savepoint (like ``append_leaf``): a failure dooms the caller's whole transaction, so a change never
    commits without its audit event, and the journal head lock is not held across two more round trips."""
    head = locked_head(org)  # audit numbering is gap-free under the journal's lock
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
    data = event.canonical_data()
    people = People(org)
    scrubbed, event.personal = scrub(data, personal_of(data, ctx.user_id, people), people.keys())
    if scrubbed != data:
        event.apply_canonical(scrubbed)
        data = event.canonical_data()
    event.leaf = append_leaf(org, LeafKind.AUDIT_EVENT, committed(data, event.personal, people.keys()), time=now,
                             head=head)
    event.save(force_insert=True)
    record_refs(org, event.leaf, event.personal)
    return event


# --- refused attempts, aggregated ---------------------------------------------------------------------
#
# Every refused attempt (another org's URL: 404; too low a role: 403) is audited, but a stranger looping
# over a URL must not be able to write hundreds of rows into an org's append-only journal. So refusals
# are counted per org + actor (user / service account / token, or "anonymous") + client IP + permission
# in windows of CSM_ACCESS_DENIED_WINDOW_SECONDS:
#
# - the first refusal of a window writes the usual ``access.denied`` event (path, permission, and the
#   window's id in ``after.window``);
# - later ones in the same window only increment a counter in the cache (Redis), no row;
# - once the window has closed, the periodic task ``audit.summarize_denied_access`` writes one
#   ``access.denied_repeated`` event per window that saw more, "N more times", pointing at the first
#   event. No audit row is ever updated; 800 refusals in a window make two rows.

DENIED_WINDOW_KEEP_SECONDS = 86400  # how long a closed window's counter waits for the summarizing task
# The refusals counted in windows; each window's repeats are summarized as ``access.denied_repeated``.
DENIAL_ACTIONS = (AuditAction.ACCESS_DENIED, AuditAction.TOKEN_SCOPE_DENIED)


def _denied_window_key(ctx: AuditContext, org, permission: str) -> str:
    actor = f"{ctx.actor_type}:{ctx.user_id or ''}:{ctx.service_account_id or ''}:{ctx.token_id or ''}"
    return f"csm:denied:open:{org.pk}:{actor}:{ctx.ip or ''}:{permission}"


def _denied_count_key(window_id: str) -> str:
    return f"csm:denied:more:{window_id}"


def record_denied_access(ctx: AuditContext, org, permission: str, path: str, *,
                         action: str = AuditAction.ACCESS_DENIED, details: dict | None = None) -> None:
    """Record a refused attempt in its own transaction (the request itself is about to fail): an
    ``access.denied`` event (or ``action``: ``token.scope_denied``, with ``details``) for the first refusal
    of a window, a cache counter for the rest (above)."""
    window = settings.CSM_ACCESS_DENIED_WINDOW_SECONDS
    open_key = _denied_window_key(ctx, org, permission)
    window_id = uuid.uuid4().hex
    if not cache.add(open_key, window_id, timeout=window):
        current = cache.get(open_key)
        if current is not None:
            count_key = _denied_count_key(current)
            if not cache.add(count_key, 1, timeout=window + DENIED_WINDOW_KEEP_SECONDS):
                try:
                    cache.incr(count_key)
                except ValueError:  # expired between add() and incr()
                    cache.add(count_key, 1, timeout=window + DENIED_WINDOW_KEEP_SECONDS)
            return
        cache.add(open_key, window_id, timeout=window)  # the window closed between add() and get()
    with transaction.atomic():
        record_event(ctx, org, action, target=("path", "", path),
                     after={**(details or {}), "permission": permission, "path": path, "window": window_id,
                            "window_seconds": window})


def summarize_denied_access(now=None) -> int:
    """Write one ``access.denied_repeated`` event for each closed window that saw more refusals than its
    first (idempotent: a window already summarized is skipped). Returns how many were written."""
    now = now or timezone.now()
    window = settings.CSM_ACCESS_DENIED_WINDOW_SECONDS
    closed_before = now - timedelta(seconds=window + 1)
    openers = (AuditEvent.objects.filter(action__in=DENIAL_ACTIONS, after__has_key="window",
                                         created_at__lte=closed_before,
                                         created_at__gt=closed_before - timedelta(seconds=DENIED_WINDOW_KEEP_SECONDS))
               .select_related("org").order_by("pk"))
    written = 0
    for first in openers.iterator():
        more = cache.get(_denied_count_key(first.after["window"]))
        if more and _summarize_window(first, int(more)):
            written += 1
    return written


@transaction.atomic
def _summarize_window(first: AuditEvent, more: int) -> bool:
    locked_head(first.org)  # serializes two summarizers: the existence check below is then reliable
    done = AuditEvent.objects.filter(org=first.org, action=AuditAction.ACCESS_DENIED_REPEATED,
                                     target_type="audit_event", target_id=str(first.seq)).exists()
    if done:
        return False
    ctx = AuditContext(actor_type=first.actor_type, actor_label=first.actor_label, user_id=first.actor_user_id,
                       service_account_id=first.actor_service_account_id, token_id=first.actor_token_id,
                       ip=first.ip, user_agent=first.user_agent)
    window = first.after.get("window_seconds", settings.CSM_ACCESS_DENIED_WINDOW_SECONDS)
    record_event(ctx, first.org, AuditAction.ACCESS_DENIED_REPEATED,
                 target=("audit_event", first.seq, f"{first.action} #{first.seq}"),
                 after={"action": first.action, "permission": first.after.get("permission"),
                        "path": first.after.get("path"),
                        "window": first.after["window"], "more": more, "total": more + 1,
                        "from": first.created_at, "until": first.created_at + timedelta(seconds=window)})
    return True
