"""Sessions of the web app: what a person (or an admin) can see and end (docs/identity.md, "Sessions").

Every sign-in (password, SSO, a new account, an invitation, the admin) records a ``UserSession`` through
Django's ``user_logged_in`` signal (identity/signals.py); ``SessionActivityMiddleware`` keeps its last-seen
time and signs out a session whose row was ended elsewhere, so ending a session is one UPDATE of its row.
The Django session key is stored only hashed."""

import hashlib
import re
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from csm.lib.clientip import client_ip
from identity.models import UserSession
from tenants.models import Membership
from tenants.services import _require_owner_rights

LAST_SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often
HISTORY_KEPT = timedelta(days=90)  # a person's ended or idle rows older than this go at their next sign-in


def hash_session_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- the device label -----------------------------------------------------------------------------------
# A short "Firefox on Linux" from the User-Agent header, without a parser dependency: the first rule that
# matches wins, so the more specific names (Edge and Opera contain "Chrome") come first.
_BROWSERS = [
    (r"Edg(?:e|A|iOS)?/", "Edge"), (r"OPR/|Opera", "Opera"), (r"Vivaldi/", "Vivaldi"),
    (r"HeadlessChrome/", "Headless Chrome"), (r"Chrome/|CriOS/", "Chrome"), (r"Firefox/|FxiOS/", "Firefox"),
    (r"Version/[\d.]+.*Safari/", "Safari"), (r"curl/", "curl"), (r"python-requests/", "python-requests"),
]
_SYSTEMS = [
    (r"iPhone|iPad|iPod", "iOS"), (r"Android", "Android"), (r"Windows", "Windows"), (r"CrOS", "ChromeOS"),
    (r"Mac OS X|Macintosh", "macOS"), (r"Linux", "Linux"),
]


def device_label(user_agent: str) -> str:
    """``"Chrome on macOS"``, ``"Firefox"`` or ``"Unknown device"``."""
    user_agent = user_agent or ""
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, user_agent)), None)
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


# --- recording --------------------------------------------------------------------------------------------

def sign_in_method(request) -> str:
    """How this request signed someone in: set by identity.signin.complete_sign_in, else told by the path
    (sign-up and invitation pages sign the new account in themselves)."""
    method = getattr(request, "csm_sign_in_method", None)
    if method:
        return method
    path = getattr(request, "path", "") or ""
    for prefix, name in (("/signup/", "signup"), ("/invitations/", "invitation"), ("/admin/", "admin")):
        if path.startswith(prefix):
            return name
    return "password"


def record_session(request, user, *, method: str) -> UserSession | None:
    """The row of the session ``request`` just signed ``user`` into (Django rotated the key at sign-in)."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    if session.session_key is None:
        session.save()
    user_agent = (getattr(request, "META", {}) or {}).get("HTTP_USER_AGENT", "")[:255]
    now = timezone.now()
    UserSession.objects.filter(user=user, last_seen_at__lt=now - HISTORY_KEPT).delete()
    row, _ = UserSession.objects.update_or_create(
        key_hash=hash_session_key(session.session_key),
        defaults={"user": user, "created_at": now, "last_seen_at": now, "ip": client_ip(request),
                  "user_agent": user_agent, "device": device_label(user_agent)[:100], "method": method,
                  "ended_at": None, "end_reason": ""})
    return row


def current_session(request) -> UserSession | None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if not key:
        return None
    return UserSession.objects.filter(key_hash=hash_session_key(key)).first()


def live_sessions(user):
    """The person's sessions that still work, most recently seen first."""
    idle_limit = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return UserSession.objects.filter(user=user, ended_at=None, last_seen_at__gt=idle_limit)


# --- ending -----------------------------------------------------------------------------------------------

def _label(user) -> str:
    return user.email or user.get_username()


def _session_target(row: UserSession) -> tuple:
    return ("session", row.pk, f"{row.device or 'unknown device'} of {_label(row.user)}")


def _record_in_user_orgs(ctx: AuditContext, user, action, target, after: dict) -> None:
    """A person's session is not an org's; its events are audited in each org the person is active in."""
    for membership in Membership.objects.filter(user=user, suspended_at=None).select_related("org"):
        record_event(ctx, membership.org, action, target, after=after)


def _end(rows, reason: str) -> int:
    return rows.filter(ended_at=None).update(ended_at=timezone.now(), end_reason=reason[:100])


def end_user_sessions(ctx: AuditContext, user, *, reason: str) -> int:
    """End every web session of ``user`` now (a suspended membership, an admin's revoke). Returns how many
    ended. Called inside the caller's transaction; the caller records the audit event of why.

    The rows are marked ended (the middleware signs such a session out on its next request); the Django
    session rows of the user are deleted too, which also ends a session older than its ``UserSession``."""
    ended = _end(UserSession.objects.filter(user=user), reason)
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
    return ended


@transaction.atomic
def revoke_session(ctx: AuditContext, user, session_id: int) -> UserSession:
    """A person ends one of their own sessions (``session.revoked``). Another person's session is a 404."""
    row = UserSession.objects.select_for_update().filter(user=user, pk=session_id).first()
    if row is None:
        raise ServiceError("No such session.", code="not_found")
    if row.ended_at is None:
        _end(UserSession.objects.filter(pk=row.pk), "revoked")
        row.refresh_from_db()
        _record_in_user_orgs(ctx, user, AuditAction.SESSION_REVOKED, _session_target(row),
                             {"device": row.device, "ip": row.ip, "method": row.method})
    return row


@transaction.atomic
def revoke_other_sessions(ctx: AuditContext, user, current: UserSession | None) -> int:
    """A person ends every session but the one they are using (``session.revoked_all``)."""
    others = UserSession.objects.filter(user=user)
    if current is not None:
        others = others.exclude(pk=current.pk)
    ended = _end(others, "revoked with all others")
    if ended:
        _record_in_user_orgs(ctx, user, AuditAction.SESSION_REVOKED_ALL, ("user", user.pk, _label(user)),
                             {"sessions_ended": ended})
    return ended


@transaction.atomic
def revoke_member_sessions(ctx: AuditContext, membership: Membership, *, actor_role: str | None) -> int:
    """An org admin ends every session of a member (``member.sessions_revoked`` in that org). An owner's
    sessions only an owner may end (the rule of tenants.services for owner changes)."""
    membership = Membership.objects.select_related("user", "org").get(pk=membership.pk)
    if membership.role == "owner":
        _require_owner_rights(actor_role, "end an owner's sessions")
    ended = _end(UserSession.objects.filter(user=membership.user), "revoked by an admin")
    record_event(ctx, membership.org, AuditAction.MEMBER_SESSIONS_REVOKED,
                 ("membership", membership.pk, _label(membership.user)), after={"sessions_ended": ended})
    return ended


def session_signed_out(request, user) -> None:
    """Django's ``user_logged_out``: the session's row ends and ``user.signed_out`` is audited, unless the
    row had already been ended elsewhere (the middleware signing a revoked session out)."""
    if user is None:
        return
    row = current_session(request)
    with transaction.atomic():
        if row is not None and row.ended_at is not None:
            return
        if row is not None:
            _end(UserSession.objects.filter(pk=row.pk), "signed out")
        ctx = AuditContext.for_user(user, request_id=getattr(request, "request_id", ""), ip=client_ip(request),
                                    user_agent=request.META.get("HTTP_USER_AGENT", "")[:255])
        _record_in_user_orgs(ctx, user, AuditAction.USER_SIGNED_OUT, ("user", user.pk, _label(user)),
                             {"session": row.pk if row is not None else None})


def touch_session(request, row: UserSession, now) -> None:
    """Last seen now (and from this address), written at most once a minute."""
    if now - row.last_seen_at < LAST_SEEN_EVERY:
        return
    UserSession.objects.filter(pk=row.pk).update(last_seen_at=now, ip=client_ip(request))
