"""Canonical JSON and RFC 6962 leaf hashing for the journal.

Canonical JSON: sorted keys, no insignificant white space, UTF-8, no floats (a float has no single
canonical text form; callers pass integers or strings). Leaf hash: ``SHA-256(0x00 || bytes)``.
"""

import datetime
import hashlib
import json
import uuid


def _check(value, path="$"):
    if isinstance(value, float):
        raise TypeError(f"canonical JSON forbids floats (at {path}); use an integer or a string")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON keys must be strings (at {path})")
            _check(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")


def _default(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not canonical-JSON serialisable")


def normalize(value):
    """Round-trip through JSON so datetimes etc. become their canonical string forms."""
    return json.loads(json.dumps(value, default=_default))


def canonical_json(value) -> bytes:
    value = normalize(value)
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def leaf_hash(payload: bytes) -> str:
    return hashlib.sha256(b"\x00" + payload).hexdigest()


GENESIS_HASH = "0" * 64
