"""Two-factor for local accounts: an authenticator app (TOTP, django-otp), passkeys (WebAuthn, py_webauthn),
single-use recovery codes, the second step of a sign-in, and the org switch "require two-factor".

A person has a second factor when they have a confirmed TOTP device or a passkey; recovery codes alone are
not one (they are generated with the first factor and removed with the last). Every change and every use
is an audit event in each org the person is an active member of (personal rows have no org).

The sign-in step: after the password (or SSO) ``begin_second_factor`` keeps the pending user, the backend,
the sign-in method, the page to open and an expiry in the session — the person is NOT signed in yet — and
``identity.views.twofactor`` asks for a code, a passkey or a recovery code, then calls
``identity.signin.complete_sign_in``."""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import segno
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from identity import orgsettings
from identity.models import OrgIdentitySettings, RecoveryCode, WebAuthnCredential
from tenants import ratelimit
from tenants.models import Membership

TOTP = "totp"
WEBAUTHN = "webauthn"
RECOVERY_CODE = "recovery_code"
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are read off paper
_PENDING_KEY = "csm_two_factor_pending"
_CHALLENGE_KEY = "csm_webauthn_challenge"
_SHOW_CODES_KEY = "csm_recovery_codes_once"
# Set in a session signed in through the sign-in pipeline (identity.signin.complete_sign_in, which asks for the
# second factor when one is due) or in which the person added a factor. A session of a person with a factor
# but without it came in another way (Django admin's own sign-in form) and is ended by the middleware.
_SESSION_PASSED_KEY = "csm_two_factor_passed"


# --- who has what ------------------------------------------------------------------------------------------

def totp_device(user) -> TOTPDevice | None:
    """The person's confirmed authenticator app (one at a time), or None."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def has_confirmed_factor(user) -> bool:
    if user is None or not getattr(user, "pk", None):
        return False
    return (TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or WebAuthnCredential.objects.filter(user=user).exists())


def passkeys(user):
    return WebAuthnCredential.objects.filter(user=user).order_by("created_at", "pk")


def unused_recovery_codes(user) -> int:
    return RecoveryCode.objects.filter(user=user, used_at=None).count()


def orgs_requiring_two_factor(user) -> list:
    """The orgs (active memberships) of ``user`` that require two-factor, by name."""
    return [m.org for m in Membership.objects.filter(user=user, suspended_at=None,
                                                      org__identity_settings__require_two_factor=True)
            .select_related("org").order_by("org__name")]


# --- audit -------------------------------------------------------------------------------------------------

def _label(user) -> str:
    return user.email or user.get_username()


def context_for(request, user) -> AuditContext:
    """The request's audit context with ``user`` as the actor (the second step runs before the sign-in)."""
    ctx = AuditContext.from_request(request)
    return replace(ctx, actor_type=AuditContext.for_user(user).actor_type, actor_label=_label(user), user_id=user.pk)


def _record_personal(ctx: AuditContext, user, action, after: dict) -> None:
    """A personal event goes in the audit trail of every org the person is an active member of."""
    for membership in Membership.objects.filter(user=user, suspended_at=None).select_related("org"):
        record_event(ctx, membership.org, action, ("user", user.pk, _label(user)), after=after)


# --- authenticator app (TOTP) --------------------------------------------------------------------------------

def pending_totp_device(user) -> TOTPDevice:
    """The unconfirmed device whose secret the setup page shows (one per person, reused until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_secret(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it typed in: base32, in groups of four."""
    b32 = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code (no inline style: the page's CSP allows none)."""
    return segno.make(device.config_url, error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", title="QR code for your authenticator app")


def _normalise_code(code: str) -> str:
    return "".join((code or "").split())


def _verify_totp(device: TOTPDevice, code: str) -> bool:
    """Check a code against a locked device row: django-otp accepts a time step only above the last one
    used, so a code is good once (replay protection), also when two requests race (the row lock)."""
    code = _normalise_code(code)
    if not code.isdigit() or len(code) != device.digits:
        return False
    return device.verify_token(code)


@transaction.atomic
def confirm_totp(ctx: AuditContext, user, code: str) -> list[str]:
    """Activate the pending authenticator app with a code from it. Returns new recovery codes when this is the
    person's first factor (else [])."""
    if totp_device(user) is not None:
        raise ServiceError("You already have an authenticator app; remove it first to set up another.",
                           field="code", code="conflict")
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        raise ServiceError("Start the setup again: no authenticator app is waiting for confirmation.", field="code")
    if not _verify_totp(device, code):
        raise ServiceError("That code is not right. Enter the 6-digit code your app shows now.", field="code")
    first = not has_confirmed_factor(user)
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    _record_personal(ctx, user, AuditAction.TWO_FACTOR_ENROLLED, {"kind": TOTP, "name": device.name})
    return _generate_recovery_codes(ctx, user) if first else []


# --- passkeys (WebAuthn) -------------------------------------------------------------------------------------

def rp_id() -> str:
    return settings.CSM_WEBAUTHN_RP_ID or (urlsplit(settings.CSM_BASE_URL).hostname or "localhost")


def expected_origin() -> str:
    parts = urlsplit(settings.CSM_BASE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def _user_handle(user) -> bytes:
    """A stable, opaque WebAuthn user handle (not the email, not the bare primary key)."""
    key = settings.CSM_TOKEN_HASH_KEY.encode()
    return hmac.new(key, f"webauthn-user:{user.pk}".encode(), hashlib.sha256).digest()


def _transports(names) -> list[AuthenticatorTransport] | None:
    known = {t.value for t in AuthenticatorTransport}
    return [AuthenticatorTransport(name) for name in names if name in known] or None


def _descriptors(user) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential_id), transports=_transports(c.transports))
            for c in passkeys(user)]


def registration_options(session, user) -> str:
    """The options (JSON) for ``navigator.credentials.create``; the challenge stays in the session."""
    options = generate_registration_options(
        rp_id=rp_id(), rp_name=settings.CSM_WEBAUTHN_RP_NAME, user_name=_label(user), user_id=_user_handle(user),
        exclude_credentials=_descriptors(user),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED))
    session[_CHALLENGE_KEY] = {"purpose": "register", "user": user.pk,
                               "challenge": bytes_to_base64url(options.challenge)}
    return options_to_json(options)


def authentication_options(session, user) -> str:
    """The options (JSON) for ``navigator.credentials.get`` limited to the person's passkeys."""
    options = generate_authentication_options(rp_id=rp_id(), allow_credentials=_descriptors(user),
                                              user_verification=UserVerificationRequirement.PREFERRED)
    session[_CHALLENGE_KEY] = {"purpose": "authenticate", "user": user.pk,
                               "challenge": bytes_to_base64url(options.challenge)}
    return options_to_json(options)


def _pop_challenge(session, user, purpose: str) -> bytes | None:
    stored = session.pop(_CHALLENGE_KEY, None)  # single use, whatever the outcome
    if not stored or stored.get("purpose") != purpose or stored.get("user") != user.pk:
        return None
    return base64url_to_bytes(stored["challenge"])


def _parse(credential_json: str) -> dict:
    try:
        credential = json.loads(credential_json or "")
    except ValueError:
        credential = None
    if not isinstance(credential, dict) or not isinstance(credential.get("id"), str):
        raise ServiceError("The browser sent no passkey. Try again.", field="credential")
    return credential


@transaction.atomic
def register_passkey(ctx: AuditContext, session, user, name: str,
                     credential_json: str) -> tuple[WebAuthnCredential, list[str]]:
    """Store a passkey the browser created for the challenge in the session. Returns it and new recovery codes
    when it is the person's first factor (else [])."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ServiceError("Name the passkey (at most 100 characters), e.g. the device it is on.", field="name")
    if passkeys(user).filter(name__iexact=name).exists():
        raise ServiceError(f"You already have a passkey named {name!r}.", field="name", code="conflict")
    challenge = _pop_challenge(session, user, "register")
    credential = _parse(credential_json)
    if challenge is None:
        raise ServiceError("The passkey request expired. Add the passkey again.", field="credential")
    try:
        verified = verify_registration_response(credential=credential, expected_challenge=challenge,
                                                expected_rp_id=rp_id(), expected_origin=expected_origin())
    except WebAuthnException as exc:
        raise ServiceError(f"The passkey could not be verified: {exc}", field="credential") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if WebAuthnCredential.objects.filter(credential_id=credential_id).exists():
        raise ServiceError("This passkey is already registered.", field="credential", code="conflict")
    first = not has_confirmed_factor(user)
    transports = [str(t) for t in ((credential.get("response") or {}).get("transports") or []) if isinstance(t, str)]
    passkey = WebAuthnCredential.objects.create(
        user=user, name=name, credential_id=credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, transports=transports[:10])
    _record_personal(ctx, user, AuditAction.TWO_FACTOR_ENROLLED, {"kind": WEBAUTHN, "name": name})
    return passkey, (_generate_recovery_codes(ctx, user) if first else [])


def _verify_passkey(session, user, credential_json: str) -> WebAuthnCredential | None:
    challenge = _pop_challenge(session, user, "authenticate")
    try:
        credential = _parse(credential_json)
    except ServiceError:
        return None
    passkey = passkeys(user).select_for_update().filter(credential_id=credential["id"]).first()
    if challenge is None or passkey is None:
        return None
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=expected_origin(), credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count)
    except WebAuthnException:
        return None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = timezone.now()
    passkey.save(update_fields=["sign_count", "last_used_at"])
    return passkey


# --- recovery codes ------------------------------------------------------------------------------------------

def _hash_code(code: str) -> str:
    key = settings.CSM_TOKEN_HASH_KEY.encode()
    normalised = _normalise_code(code).replace("-", "").lower()
    return hmac.new(key, f"recovery:{normalised}".encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _generate_recovery_codes(ctx: AuditContext, user) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=_hash_code(c)) for c in codes])
    _record_personal(ctx, user, AuditAction.TWO_FACTOR_RECOVERY_CODES_GENERATED, {"count": len(codes)})
    return codes


@transaction.atomic
def regenerate_recovery_codes(ctx: AuditContext, user, confirm: str) -> list[str]:
    """A new set of recovery codes; the old ones stop working. Only with a second factor, confirmed like a
    removal (``confirm_identity``)."""
    if not confirm_identity(user, confirm):
        raise ServiceError(f"Confirm with {_confirm_what(user)}.", field="confirm", code="forbidden")
    if not has_confirmed_factor(user):
        raise ServiceError("Add an authenticator app or a passkey first; recovery codes come with it.",
                           field="confirm", code="conflict")
    return _generate_recovery_codes(ctx, user)


def _use_recovery_code(user, code: str) -> bool:
    row = RecoveryCode.objects.select_for_update().filter(user=user, code_hash=_hash_code(code), used_at=None).first()
    if row is None:
        return False
    row.used_at = timezone.now()
    row.save(update_fields=["used_at"])
    return True


def show_codes_once(session, codes: list[str]) -> None:
    if codes:
        session[_SHOW_CODES_KEY] = codes


def pop_codes(session) -> list[str]:
    return session.pop(_SHOW_CODES_KEY, None) or []


# --- removing a factor ---------------------------------------------------------------------------------------

def confirm_identity(user, secret: str) -> bool:
    """The check before removing a factor or replacing recovery codes: the account's password; an account
    without one (created by SSO) confirms with a code from its authenticator app instead."""
    secret = secret or ""
    if user.has_usable_password():
        return bool(secret) and check_password(secret, user.password)
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    return device is not None and _verify_totp(device, secret)


def _confirm_what(user) -> str:
    return "your password" if user.has_usable_password() else "a code from your authenticator app"


def _check_removal(user, secret: str, remaining_factors: int) -> None:
    if not confirm_identity(user, secret):
        raise ServiceError(f"Confirm with {_confirm_what(user)}.", field="confirm", code="forbidden")
    if remaining_factors == 0:
        requiring = orgs_requiring_two_factor(user)
        if requiring:
            names = ", ".join(org.name for org in requiring)
            raise ServiceError(f"{names} requires two-factor: add another factor before removing your last one.",
                               field="confirm", code="conflict")


def _factor_count(user) -> int:
    return TOTPDevice.objects.filter(user=user, confirmed=True).count() + passkeys(user).count()


def _after_removal(user) -> None:
    if not has_confirmed_factor(user):  # without a factor there is no second step: recovery codes go too
        RecoveryCode.objects.filter(user=user).delete()


@transaction.atomic
def remove_totp(ctx: AuditContext, user, confirm: str) -> None:
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if device is None:
        raise ServiceError("You have no authenticator app.", code="not_found")
    _check_removal(user, confirm, _factor_count(user) - 1)
    device.delete()
    _after_removal(user)
    _record_personal(ctx, user, AuditAction.TWO_FACTOR_REMOVED, {"kind": TOTP, "name": device.name})


@transaction.atomic
def remove_passkey(ctx: AuditContext, user, passkey_id: int, confirm: str) -> None:
    passkey = passkeys(user).select_for_update().filter(pk=passkey_id).first()
    if passkey is None:
        raise ServiceError("No such passkey.", code="not_found")
    _check_removal(user, confirm, _factor_count(user) - 1)
    passkey.delete()
    _after_removal(user)
    _record_personal(ctx, user, AuditAction.TWO_FACTOR_REMOVED, {"kind": WEBAUTHN, "name": passkey.name})


# --- sessions -------------------------------------------------------------------------------------------------

def mark_session_passed(session) -> None:
    session[_SESSION_PASSED_KEY] = True


def session_skipped_second_factor(request) -> bool:
    """True for a signed-in session of a person with a second factor that never passed it."""
    return not request.session.get(_SESSION_PASSED_KEY) and has_confirmed_factor(request.user)


# --- the second step of a sign-in ------------------------------------------------------------------------------

@dataclass
class PendingSignIn:
    user: object
    backend: str
    method: str
    redirect_to: str
    amr: list


def begin_second_factor(request, user, *, method: str, redirect_to: str, backend: str, amr=None) -> None:
    """Keep the half-done sign-in in the session (the person is not signed in) for the two-factor step."""
    request.session.cycle_key()  # a new key for the pending state, like login() does for the session
    request.session[_PENDING_KEY] = {
        "user": user.pk, "backend": backend, "method": method, "redirect": redirect_to, "amr": list(amr or []),
        "expires": time.time() + settings.CSM_TWO_FACTOR_PENDING_SECONDS,
    }


def pending_sign_in(request) -> PendingSignIn | None:
    """The half-done sign-in of this session, or None (none, or older than CSM_TWO_FACTOR_PENDING_SECONDS)."""
    state = request.session.get(_PENDING_KEY)
    if not isinstance(state, dict):
        return None
    if state.get("expires", 0) < time.time():
        clear_pending(request)
        return None
    user = get_user_model().objects.filter(pk=state.get("user"), is_active=True).first()
    if user is None:
        clear_pending(request)
        return None
    return PendingSignIn(user, state["backend"], state["method"], state["redirect"], state.get("amr") or [])


def clear_pending(request) -> None:
    request.session.pop(_PENDING_KEY, None)
    request.session.pop(_CHALLENGE_KEY, None)


def passkey_options_for_pending(request) -> str | None:
    pending = pending_sign_in(request)
    if pending is None or not passkeys(pending.user).exists():
        return None
    return authentication_options(request.session, pending.user)


class TooManyAttempts(Exception):
    def __init__(self, limited):
        super().__init__(limited.message)
        self.limited = limited


def verify_second_factor(request, pending: PendingSignIn, *, code: str = "", credential: str = "") -> str | None:
    """Check the second factor of a pending sign-in: a passkey assertion (``credential``), else ``code`` as a
    TOTP code (6 digits) or a recovery code. Returns the kind that passed, or None; both outcomes are audited,
    failures counted (TooManyAttempts when over the limit: the pending sign-in is dropped)."""
    user = pending.user
    ip = AuditContext.from_request(request).ip
    account = f"user:{user.pk}"
    limited = ratelimit.check_second_factor(account, ip)
    if limited is not None:
        clear_pending(request)
        raise TooManyAttempts(limited)
    ctx = context_for(request, user)
    with transaction.atomic():
        kind = _check_factor(request, user, code, credential)
        if kind is None:
            attempted = WEBAUTHN if credential else (TOTP if _normalise_code(code).isdigit() else RECOVERY_CODE)
            _record_personal(ctx, user, AuditAction.TWO_FACTOR_FAILED, {"kind": attempted, "method": pending.method})
        else:
            _record_personal(ctx, user, AuditAction.TWO_FACTOR_VERIFIED, {"kind": kind, "method": pending.method})
            if kind == RECOVERY_CODE:
                _record_personal(ctx, user, AuditAction.TWO_FACTOR_RECOVERY_CODE_USED,
                                 {"remaining": unused_recovery_codes(user)})
    if kind is None:
        ratelimit.record_second_factor_failure(account, ip)
    else:
        ratelimit.record_second_factor_success(account)
    return kind


def _check_factor(request, user, code: str, credential: str) -> str | None:
    if credential:
        return WEBAUTHN if _verify_passkey(request.session, user, credential) is not None else None
    code = _normalise_code(code)
    if not code:
        return None
    if code.isdigit():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        return TOTP if device is not None and _verify_totp(device, code) else None
    return RECOVERY_CODE if _use_recovery_code(user, code) else None


# --- the org switch --------------------------------------------------------------------------------------------

@transaction.atomic
def set_require_two_factor(ctx: AuditContext, org, required: bool, actor) -> OrgIdentitySettings:
    """Turn "require two-factor" on or off for ``org`` (audited as identity.settings_changed). Turning it on
    needs the person doing it to have a second factor, so they cannot lock themselves out of the org."""
    if required and not has_confirmed_factor(actor):
        raise ServiceError("Add a second factor to your own account first (Your account → Security): "
                           "otherwise this would lock you out of the org's pages.", field="require_two_factor",
                           code="conflict")
    return orgsettings.set_switch(ctx, org, "require_two_factor", required)


def members_without_factor(org) -> list:
    """The org's active memberships whose person has no second factor (what "require two-factor" blocks)."""
    with_totp = TOTPDevice.objects.filter(confirmed=True).values("user_id")
    with_passkey = WebAuthnCredential.objects.values("user_id")
    return list(Membership.objects.filter(org=org, suspended_at=None).exclude(user_id__in=with_totp)
                .exclude(user_id__in=with_passkey).select_related("user").order_by("user__email"))
