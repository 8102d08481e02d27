"""Middleware of the identity app."""

from django.contrib import messages
from django.contrib.auth import logout
from django.utils import timezone

from identity import sessions


class SessionActivityMiddleware:
    """For a signed-in browser session: sign it out when its ``UserSession`` row was ended elsewhere (revoked
    from another device, by an admin, by a suspension), else note when it was last seen (at most once a
    minute). A session signed in before rows were recorded gets its row now. After the authentication and
    messages middleware (csm/settings.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and request.session.session_key:
            row = sessions.current_session(request)
            if row is None:
                sessions.record_session(request, user, method="unknown")
            elif row.ended_at is not None:
                logout(request)
                messages.info(request, "This session was ended from another device or by an admin; sign in again.")
            else:
                sessions.touch_session(request, row, timezone.now())
        return self.get_response(request)
