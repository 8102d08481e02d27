"""Helpers of the two-factor tests: TOTP codes computed from the secret (RFC 6238 / RFC 4226, written out
here rather than taken from the code under test), an enrolled authenticator app, and the password step."""

import base64
import hashlib
import hmac
import struct
import time
from binascii import unhexlify

from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from identity.twofactor import mark_session_passed
from tests.conftest import PASSWORD


def totp_code(key_hex: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """The RFC 6238 code (HMAC-SHA1, dynamic truncation) of the hex secret at time ``at`` (default now)."""
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(unhexlify(key_hex), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def code_from_base32(secret_text: str, at: float | None = None) -> str:
    """The code for the secret as the setup page shows it (base32 in groups of four), like an app typing it."""
    b32 = secret_text.replace(" ", "")
    key = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    return totp_code(key.hex(), at)


def enrol_totp(user) -> TOTPDevice:
    """A confirmed authenticator app for ``user``, stored directly (the enrolment page has its own tests)."""
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def password_step(client, email: str, password: str = PASSWORD, next_url: str = ""):
    """POST the sign-in form; returns the response (a redirect to the two-factor step when one is due)."""
    data = {"username": email, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/login/" + (f"?next={next_url}" if next_url else ""), data)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def client_signed_in(user):
    """A test client with ``user`` signed in as through the sign-in pipeline (second factor passed), which a
    person with a factor needs: a session that skipped it is ended by the middleware."""
    client = Client()
    client.force_login(user)
    session = client.session
    mark_session_passed(session)
    session.save()
    return client
