"""Signal handlers of the identity app (connected from apps.py): sessions from Django's sign-in and
sign-out signals, and the unusual-network check on every accepted API token."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from identity import sessions
from identity.activity import note_token_network
from tenants.hooks import on_token_used, token_used

# unusual activity: every accepted API token is checked for a network it never used (one cache lookup).
if note_token_network not in token_used:
    on_token_used(note_token_network)


@receiver(user_logged_in, dispatch_uid="identity-session-signed-in")
def _session_signed_in(sender, request, user, **kwargs):
    """Every sign-in (password, SSO, sign-up, invitation, admin) records its session."""
    if request is not None:
        sessions.record_session(request, user, method=sessions.sign_in_method(request))


@receiver(user_logged_out, dispatch_uid="identity-session-signed-out")
def _session_signed_out(sender, request, user, **kwargs):
    if request is not None:
        sessions.session_signed_out(request, user)
