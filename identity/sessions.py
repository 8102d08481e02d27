"""Sessions of the web app: what a person (or an admin) can see and end (docs/identity.md, "Sessions")."""

from django.contrib.sessions.models import Session
from django.utils import timezone

from audit.context import AuditContext


def end_user_sessions(ctx: AuditContext, user, *, reason: str) -> int:
    """End every web session of ``user`` now (a suspended membership, a revoke-all). Returns how many ended.
    Called inside the caller's transaction; the caller records the audit event of why."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    return ended
