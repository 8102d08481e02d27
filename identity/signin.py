"""The sign-in pipeline: every way into the web app (password, OpenID Connect SSO, the second factor, a
new account, an accepted invitation) ends in ``complete_sign_in``, so sessions are recorded, two-factor is
asked for and the audit trail written in one place.

    password form valid ──► password_sign_in_refusal(user)  (SSO required for one of the user's orgs?)
                        └─► begin_sign_in(request, user, method="password")
    SSO callback        ──► begin_sign_in(request, user, method="sso")
    begin_sign_in       ──► a second factor enrolled or required → the two-factor step (identity.twofactor)
                        └─► complete_sign_in(request, user, method)
    a refused password  ──► sign_in_failed(request, username)

docs/identity.md describes the whole flow."""

from django.contrib.auth import get_user_model, login
from django.db import transaction
from django.shortcuts import redirect

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from identity import twofactor
from tenants.models import Membership

PASSWORD_BACKEND = "tenants.backends.EmailOrUsernameBackend"  # noqa: S105 - a dotted path, not a secret


def _label(user) -> str:
    return user.email or user.get_username()


def password_sign_in_refusal(user) -> str | None:
    """Why ``user`` may not sign in with a password (an org of theirs requires SSO), or None."""
    return None


def second_factor_needed(request, user) -> bool:
    """True when ``user`` must pass a second factor before the session is theirs: they have a confirmed one
    (an authenticator app or a passkey), however they signed in — an IdP's own MFA does not replace it."""
    return twofactor.has_confirmed_factor(user)


def begin_sign_in(request, user, *, method: str, redirect_to: str, backend: str = PASSWORD_BACKEND, amr=None):
    """The first factor succeeded: either complete the sign-in or hand over to the second factor. Returns
    the response to send. ``amr``: the authentication methods an IdP reported (recorded, not trusted)."""
    if second_factor_needed(request, user):
        twofactor.begin_second_factor(request, user, method=method, redirect_to=redirect_to, backend=backend, amr=amr)
        return redirect("two-factor-verify")
    complete_sign_in(request, user, method=method, backend=backend, amr=amr)
    return redirect(redirect_to)


def complete_sign_in(request, user, *, method: str, backend: str = PASSWORD_BACKEND, amr=None) -> None:
    """Log ``user`` in (rotating the session key), record the session and the audit event ``user.signed_in``
    (with the method, and the IdP's ``amr`` when it sent one) in every org the person is an active member of."""
    login(request, user, backend=backend)
    twofactor.mark_session_passed(request.session)  # this session went through the second factor if one was due
    ctx = AuditContext.from_request(request)
    after = {"method": method, **({"amr": list(amr)} if amr else {})}
    with transaction.atomic():
        for membership in Membership.objects.filter(user=user, suspended_at=None).select_related("org"):
            record_event(ctx, membership.org, AuditAction.USER_SIGNED_IN, ("user", user.pk, _label(user)),
                         after=after)


def sign_in_failed(request, username: str, *, reason: str) -> None:
    """A refused sign-in of an existing account is an audit event in each of its orgs (an unknown name is
    recorded nowhere: no org owns it)."""
    username = (username or "").strip()
    if not username:
        return
    User = get_user_model()
    user = User.objects.filter(email__iexact=username).order_by("pk").first() or \
        User.objects.filter(username=username).first()
    if user is None:
        return
    ctx = AuditContext.from_request(request)
    with transaction.atomic():
        for membership in Membership.objects.filter(user=user, suspended_at=None).select_related("org"):
            record_event(ctx, membership.org, AuditAction.USER_SIGN_IN_FAILED, ("user", user.pk, _label(user)),
                         after={"reason": reason})
