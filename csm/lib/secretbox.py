"""Secrets csm must read back, encrypted at rest: an org's OpenID Connect client secret (key material
``CSM_SECRET_ENCRYPTION_KEY``) and alert actions' webhook signing secrets (``CSM_ACTION_SECRET_KEY``).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under the SHA-256 of the key material (each
setting defaults to one derived from SECRET_KEY). Django-free: callers pass the key material. Changing the
key makes stored secrets unreadable (``SecretUnreadable``): they must be entered again.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretUnreadable(Exception):
    """The stored secret cannot be decrypted with the current key (the key changed, or the value was altered)."""


def _fernet(key_material: str) -> Fernet:
    key = hashlib.sha256(key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plaintext: str, key_material: str) -> str:
    """Encrypt ``plaintext``; the result is ASCII, safe for a text column."""
    return _fernet(key_material).encrypt(plaintext.encode()).decode("ascii")


def unseal(token: str, key_material: str) -> str:
    """Decrypt what ``seal`` produced with the same key material."""
    try:
        return _fernet(key_material).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError, UnicodeError):
        raise SecretUnreadable("the secret cannot be decrypted with the current key") from None
