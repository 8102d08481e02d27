"""Standard Webhooks signing (https://www.standardwebhooks.com/) and the signing secret at rest.

A secret is ``whsec_<base64 of 32 random bytes>``; it is shown once when the action is created and
stored encrypted (Fernet, key derived from ``CSM_ACTION_SECRET_KEY``) because csm needs it back to
sign every delivery. Each request carries::

    webhook-id:        msg_<random>           (the same on every retry of one event)
    webhook-timestamp: <unix seconds>         (the time of this attempt)
    webhook-signature: v1,<base64 HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")>
"""

import base64
import hashlib
import hmac
import secrets

from django.conf import settings

from csm.lib import secretbox

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_event_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict, body: bytes) -> bool:
    """Receiver side (used by tests and documented for users): any ``v1,`` signature matches."""
    expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return any(hmac.compare_digest(expected, candidate) for candidate in headers["webhook-signature"].split(" "))


def encrypt_secret(secret: str) -> str:
    return secretbox.seal(secret, settings.CSM_ACTION_SECRET_KEY)


def decrypt_secret(token: str) -> str:
    try:
        return secretbox.unseal(token, settings.CSM_ACTION_SECRET_KEY)
    except secretbox.SecretUnreadable:
        raise ValueError("the signing secret cannot be decrypted (was CSM_ACTION_SECRET_KEY changed?)") from None
