"""Report bodies: reading them (size limit, gzip), validating them per environment type, and
canonicalizing them into (name, fingerprint) → instances.

Field names are exactly the kosli CLI's, per type:

- K8S: ``{"podName", "namespace", "digests": {image: sha256}, "creationTimestamp", "owners": [...]}``
- ECS: ``{"taskArn", "cluster_name", "service_name", "digests", "creationTimestamp"}`` (a digest may be ""
  when the agent could not resolve it: the artifact is kept, its fingerprint unknown)
- S3, lambda, server, docker: ``{"digests", "creationTimestamp"}``
- azure-apps: ``{"app_name", "app_kind", "digests_source", "digests", "creationTimestamp"}``
- cloud-run: ``{"digests", "creationTimestamp", "kind", "serviceName", "revisionName", "jobName"}``
"""

import io
import json
import zlib
from dataclasses import dataclass, field

import ijson

from csm.fingerprints import is_fingerprint
from snapshots.choices import EnvironmentType

MAX_FIELD_ERRORS = 20
# One encoder for every instance: json.dumps(..., separators=...) would build a new encoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_STR, _OPT_STR = "string", "optional string"

# Per type: required/optional context fields of one entry besides digests and creationTimestamp.
CONTEXT_FIELDS: dict[str, dict[str, str]] = {
    EnvironmentType.K8S: {"podName": _STR, "namespace": _STR},
    EnvironmentType.ECS: {"taskArn": _STR, "cluster_name": _OPT_STR, "service_name": _OPT_STR},
    EnvironmentType.AZURE_APPS: {"app_name": _STR, "app_kind": _OPT_STR, "digests_source": _OPT_STR},
    EnvironmentType.CLOUD_RUN: {"kind": _OPT_STR, "serviceName": _OPT_STR, "revisionName": _OPT_STR,
                                "jobName": _OPT_STR},
}
UNKNOWN_DIGEST_ALLOWED = {EnvironmentType.ECS}


class BodyTooLarge(Exception):
    """The (decompressed) body exceeds the configured limit."""


class BadEncoding(Exception):
    """The body claims gzip but is not valid gzip."""


@dataclass
class ReportInvalid(Exception):
    """A report body that fails validation; ``fields`` maps ``artifacts[3].digests`` → problems."""

    message: str
    fields: dict = field(default_factory=dict)

    def __str__(self):
        return self.message


def read_body(stream, limit: int, gzipped: bool, chunk_size: int = 1 << 20) -> bytes:
    """Read a request body, decompressing gzip on the fly; the limit applies to the decompressed
    size and is checked while streaming, so a gzip bomb never expands past ``limit`` in memory."""
    parts: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None

    def keep(data: bytes):
        nonlocal size
        size += len(data)
        if size > limit:
            raise BodyTooLarge(f"The report body is larger than the limit of {limit} bytes (after decompression).")
        parts.append(data)

    if inflater is None:  # one buffer, no chunk list + join: a 50 MB body costs 50 MB
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge(f"The report body is larger than the limit of {limit} bytes.")
        return body
    try:
        while chunk := stream.read(chunk_size):
            keep(inflater.decompress(chunk, limit + 1 - size))
            while inflater.unconsumed_tail:
                keep(inflater.decompress(inflater.unconsumed_tail, limit + 1 - size))
        keep(inflater.flush())
        if not inflater.eof:
            raise BadEncoding("Content-Encoding is gzip but the gzip stream is truncated.")
    except zlib.error as error:
        raise BadEncoding(f"Content-Encoding is gzip but the body is not valid gzip: {error}") from None
    return b"".join(parts)


def parse_report(raw: bytes) -> dict:
    """The whole body as Python objects (only for small or structurally wrong bodies: see
    ``validate_report_body`` for the streaming path)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ReportInvalid(f"The body is not valid JSON: {error}", {"body": [str(error)]}) from None
    if not isinstance(data, dict):
        raise ReportInvalid("The body must be a JSON object with an 'artifacts' list.", {"body": ["not an object"]})
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(env_type: str, index: int, entry, problem) -> None:
    where = f"artifacts[{index}]"
    if not isinstance(entry, dict):
        problem(where, "must be an object")
        return
    digests = entry.get("digests")
    if not isinstance(digests, dict):
        problem(f"{where}.digests", "must be an object mapping artifact name to sha256")
    elif not all(name and is_fingerprint(digest) for name, digest in digests.items()):
        for name, digest in digests.items():
            if not name:
                problem(f"{where}.digests", "artifact names must not be empty")
            elif not isinstance(digest, str):
                problem(f"{where}.digests.{name}", "must be a string")
            elif digest == "" and env_type in UNKNOWN_DIGEST_ALLOWED:
                continue
            elif not is_fingerprint(digest):
                problem(f"{where}.digests.{name}", "must be a SHA-256 fingerprint: 64 lowercase hex characters")
    created = entry.get("creationTimestamp")
    if created is not None and (not (_is_int(created) or isinstance(created, float)) or not 0 <= created < 1e11):
        problem(f"{where}.creationTimestamp", "must be a non-negative number of seconds since the epoch")
    for name, kind in CONTEXT_FIELDS.get(env_type, {}).items():
        value = entry.get(name)
        if value is None and kind == _OPT_STR:
            continue
        if not isinstance(value, str) or (kind == _STR and not value):
            problem(f"{where}.{name}", "is required and must be a non-empty string" if kind == _STR
                    else "must be a string")
    if env_type == EnvironmentType.K8S and entry.get("owners") is not None and not isinstance(entry["owners"], list):
        problem(f"{where}.owners", "must be a list of owner references")


def _raise_if(errors: dict) -> None:
    if errors:
        first_path, first_problems = next(iter(errors.items()))
        raise ReportInvalid(f"Invalid report: {first_path}: {first_problems[0]}", errors)


def validate_report(env_type: str, data: dict) -> int:
    """Validate a parsed report for ``env_type``; return its entry count or raise ``ReportInvalid``
    naming each bad field as ``artifacts[i].field`` (at most MAX_FIELD_ERRORS are listed)."""
    errors: dict[str, list[str]] = {}

    def problem(path, text):
        errors.setdefault(path, []).append(text)

    artifacts = data.get("artifacts")
    if not isinstance(artifacts, list):
        raise ReportInvalid("'artifacts' must be a list.", {"artifacts": ["must be a list"]})
    if env_type == EnvironmentType.CLOUD_RUN and "type" in data and not isinstance(data["type"], str):
        problem("type", "must be a string")
    for index, entry in enumerate(artifacts):
        if len(errors) >= MAX_FIELD_ERRORS:
            break
        _check_entry(env_type, index, entry, problem)
    _raise_if(errors)
    return len(artifacts)


def iter_artifacts(raw: bytes):
    """The entries of ``{"artifacts": [...]}``, one at a time (streaming parse: memory stays bounded
    whatever the number of pods). Raises ReportInvalid on malformed JSON."""
    try:
        yield from ijson.items(io.BytesIO(raw), "artifacts.item", use_float=True)
    except ijson.JSONError as error:
        raise ReportInvalid(f"The body is not valid JSON: {error}", {"body": [str(error)]}) from None


def validate_report_body(env_type: str, raw: bytes) -> int:
    """Validate a raw report body while streaming through it; return the entry count.

    A body whose ``artifacts`` yields no entry (empty, missing, not a list, not an object...) is small
    or malformed, and is re-read whole to name the structural problem precisely."""
    errors: dict[str, list[str]] = {}

    def problem(path, text):
        errors.setdefault(path, []).append(text)

    if b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL: refuse it here rather than fail in ingest
        raise ReportInvalid("NUL characters (\\u0000) are not allowed in a report.", {"body": ["contains \\u0000"]})
    count = 0
    for index, entry in enumerate(iter_artifacts(raw)):
        count = index + 1
        if len(errors) < MAX_FIELD_ERRORS:
            _check_entry(env_type, index, entry, problem)
    _raise_if(errors)
    if count == 0:
        return validate_report(env_type, parse_report(raw))
    return count


_SORT_FIELDS = ("podName", "taskArn", "app_name", "revisionName")


def _instance(env_type: str, entry: dict) -> tuple[tuple, str]:
    """(sort key, JSON text) of one instance: the agent's entry without its digests (pod / task / app
    context, creation time). Kept as text: a pod costs ~300 bytes, not ~2 KB of Python objects."""
    instance = {key: value for key, value in entry.items() if key != "digests"}
    sort_key = next((instance[f] for f in _SORT_FIELDS if isinstance(instance.get(f), str)), "")
    return (sort_key,), _encode(instance)


def canonicalize_body(env_type: str, raw: bytes) -> dict[tuple[str, str], list[tuple[tuple, str]]]:
    """(artifact name, fingerprint) → its instances as (sort key, JSON text), streaming over the body.
    ``instances_json`` turns one list into the stored JSON array, in a canonical order."""
    running: dict[tuple[str, str], list[tuple[tuple, str]]] = {}
    for entry in iter_artifacts(raw):
        instance = None
        for name, digest in entry["digests"].items():
            if instance is None:
                instance = _instance(env_type, entry)
            running.setdefault((name, digest), []).append(instance)
    return running


def instances_json(instances: list[tuple[tuple, str]]) -> str:
    instances.sort()
    return "[" + ",".join(text for _, text in instances) + "]"
