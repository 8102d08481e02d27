"""Signal handlers of the identity app (connected from apps.py). Each area adds its own here."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from identity import sessions


@receiver(user_logged_in, dispatch_uid="identity-session-signed-in")
def _session_signed_in(sender, request, user, **kwargs):
    """Every sign-in (password, SSO, sign-up, invitation, admin) records its session."""
    if request is not None:
        sessions.record_session(request, user, method=sessions.sign_in_method(request))


@receiver(user_logged_out, dispatch_uid="identity-session-signed-out")
def _session_signed_out(sender, request, user, **kwargs):
    if request is not None:
        sessions.session_signed_out(request, user)
