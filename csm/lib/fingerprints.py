"""The one definition of a fingerprint: a SHA-256 as 64 lowercase hex characters, nothing else
(DESIGN: anything else is a 400). ``fullmatch``, not ``match`` with ``$``: that would also accept a
trailing newline."""

import re

FINGERPRINT_PATTERN = r"[0-9a-f]{64}"
_FULLMATCH = re.compile(FINGERPRINT_PATTERN).fullmatch


def is_fingerprint(value) -> bool:
    return isinstance(value, str) and _FULLMATCH(value) is not None

_PREFIX = re.compile(r"[0-9a-f]{5,64}").fullmatch


def is_fingerprint_prefix(value) -> bool:
    """5 to 64 lowercase hex characters: the shortest prefix a search or a kosli short reference takes."""
    return isinstance(value, str) and _PREFIX(value) is not None
