"""The sign-in pipeline: every way into the web app (password, OpenID Connect SSO, the second factor, a
new account, an accepted invitation) ends in ``complete_sign_in``, so sessions are recorded, two-factor is
asked for and the audit trail written in one place.

    password form valid ──► password_sign_in_refusal(user)  (SSO required for one of the user's orgs?)
                        └─► begin_sign_in(request, user, method="password")
    SSO callback        ──► begin_sign_in(request, user, method="sso")
    SSO link page       ──► begin_sign_in(request, user, method="sso")  (an existing account, its password)
    begin_sign_in       ──► a second factor enrolled or required → the two-factor step (identity.twofactor)
                        └─► complete_sign_in(request, user, method)
    a refused password  ──► sign_in_failed(request, username)

docs/identity.md describes the whole flow."""

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.db import transaction
from django.shortcuts import redirect

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from identity import sso, twofactor
from identity.activity import note_failed_sign_in
from tenants.choices import Role
from tenants.models import Membership

PASSWORD_BACKEND = "tenants.backends.EmailOrUsernameBackend"  # noqa: S105 - a dotted path, not a secret


def _label(user) -> str:
    return user.email or user.get_username()


def password_sign_in_refusal(user, request=None) -> str | None:
    """Why ``user`` may not sign in with a password (an org of theirs requires SSO), or None.

    A person in several orgs is refused when any org where they are not an owner requires SSO: they sign in
    through that org's IdP (which opens their other orgs too). Owners keep a password as the recovery path
    (an IdP outage must not lock an org out); such a sign-in is recorded as ``sso.recovery_sign_in`` in each
    SSO-required org."""
    required = sso.sso_required_orgs(user)
    if not required:
        return None
    blocking = [org for org, role in required if role != Role.OWNER]
    if blocking:
        org = blocking[0]
        return (f"{org.name} requires single sign-on: use \"Sign in with SSO\" with your work email "
                f"(or {settings.CSM_BASE_URL}/sso/{org.slug}/start/).")
    ctx = AuditContext.from_request(request) if request is not None else AuditContext.for_user(user)
    sso.record_recovery_sign_in(ctx, user, [org for org, _ in required])
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
    request.csm_sign_in_method = method  # the session row records it (identity.signals → identity.sessions)
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
    recorded nowhere: no org owns it); the ``CSM_UNUSUAL_FAILED_SIGN_INS``-th within the window is also
    flagged as unusual activity."""
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
        orgs = [m.org for m in Membership.objects.filter(user=user, suspended_at=None).select_related("org")]
        for org in orgs:
            record_event(ctx, org, AuditAction.USER_SIGN_IN_FAILED, ("user", user.pk, _label(user)),
                         after={"reason": reason})
        note_failed_sign_in(ctx, user, orgs)  # repeated failures are unusual activity (identity.activity)
