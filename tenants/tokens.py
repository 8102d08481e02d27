"""API token format and keyed hashing.

A token looks like ``csm_`` + 40 base62 characters (238 bits), so secret scanners can match
``csm_[0-9A-Za-z]{40}``. Only ``HMAC-SHA256(CSM_TOKEN_HASH_KEY, token)`` is stored; the plaintext is
returned once, at creation.
"""

import hashlib
import hmac
import re
import secrets
import string

from django.conf import settings

PREFIX = "csm_"
_ALPHABET = string.ascii_letters + string.digits
TOKEN_RE = re.compile(r"^csm_[0-9A-Za-z]{40}$")


def generate_token() -> str:
    return PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def hash_token(token: str) -> str:
    key = settings.CSM_TOKEN_HASH_KEY.encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def display_prefix(token: str) -> str:
    """What the UI shows to recognise a token: ``csm_AbCd1234``."""
    return token[: len(PREFIX) + 8]
