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

import json
import re
import zlib
from dataclasses import dataclass, field

import msgspec

from csm.lib.bounded import InputError, load_json, raw_decode
from csm.lib.fingerprints import is_fingerprint
from snapshots.choices import EnvironmentType

MAX_FIELD_ERRORS = 20
# Instances are re-encoded as compact UTF-8 JSON (key order kept) by msgspec: ~4x faster than the
# standard library's encoder, which is ~0.5 s of a 150,000-pod ingest.
_encode = msgspec.json.Encoder().encode

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
    ``validate_report_body`` for the streaming path), through the API's bounded JSON loader."""
    try:  # UTF-8 only, no byte-order mark, no NaN, depth-checked before parsing: as iter_artifacts reads
        data = load_json(raw, "body")
    except InputError as error:
        raise ReportInvalid(f"The {error.message}", {"body": [error.message]}) from None
    if not isinstance(data, dict):
        raise ReportInvalid("The body must be a JSON object with an 'artifacts' list.", {"body": ["not an object"]})
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_digests(env_type: str, where: str, digests: dict, problem) -> None:
    for name, digest in digests.items():
        if not name:
            problem(f"{where}.digests", "artifact names must not be empty")
        elif not isinstance(digest, str):
            problem(f"{where}.digests.{name}", "must be a string")
        elif digest == "" and env_type in UNKNOWN_DIGEST_ALLOWED:
            continue
        elif not is_fingerprint(digest):
            problem(f"{where}.digests.{name}", "must be a SHA-256 fingerprint: 64 lowercase hex characters")


def _check_entry(env_type: str, index: int, entry, problem, context_fields=()) -> None:
    """Problems of one entry, reported through ``problem(path, text)``. Runs 150,000 times for a large
    cluster, so the valid case takes the shortest path: paths are only formatted for a problem."""
    if not isinstance(entry, dict):
        problem(f"artifacts[{index}]", "must be an object")
        return
    digests = entry.get("digests")
    if not isinstance(digests, dict):
        problem(f"artifacts[{index}].digests", "must be an object mapping artifact name to sha256")
    else:
        for name, digest in digests.items():
            if not (name and is_fingerprint(digest)):
                _check_digests(env_type, f"artifacts[{index}]", digests, problem)
                break
    created = entry.get("creationTimestamp")
    if created is not None and (not (_is_int(created) or isinstance(created, float)) or not 0 <= created < 1e11):
        problem(f"artifacts[{index}].creationTimestamp", "must be a non-negative number of seconds since the epoch")
    for name, kind in context_fields:
        value = entry.get(name)
        if isinstance(value, str) and (value or kind == _OPT_STR) or (value is None and kind == _OPT_STR):
            continue
        problem(f"artifacts[{index}].{name}", "is required and must be a non-empty string" if kind == _STR
                else "must be a string")
    if env_type == EnvironmentType.K8S and entry.get("owners") is not None and not isinstance(entry["owners"], list):
        problem(f"artifacts[{index}].owners", "must be a list of owner references")


def _check_top(env_type: str, top: dict, problem) -> None:
    """Top-level members besides ``artifacts``: cloud-run reports carry a ``type`` string."""
    if env_type == EnvironmentType.CLOUD_RUN and "type" in top and not isinstance(top["type"], str):
        problem("type", "must be a string")


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
    _check_top(env_type, data, problem)
    context_fields = tuple(CONTEXT_FIELDS.get(env_type, {}).items())
    for index, entry in enumerate(artifacts):
        if len(errors) >= MAX_FIELD_ERRORS:
            break
        _check_entry(env_type, index, entry, problem, context_fields)
    _raise_if(errors)
    return len(artifacts)


# The C scanner of the standard library, one value at a time (NaN / Infinity refused, as JSON does): the
# same scanner as every other JSON body (csm.lib.bounded). Streaming entry by entry, an entry nested too deeply
# ends in RecursionError, turned into a 400 below: no pre-scan, so no second pass over a 72 MB body.
_raw_decode = raw_decode
_skip_ws = re.compile(r"[ \t\n\r]*").match


def _ws(text: str, pos: int) -> int:
    return _skip_ws(text, pos).end()


def _expect(text: str, pos: int, char: str, what: str) -> int:
    if not text.startswith(char, pos):
        raise json.JSONDecodeError(f"Expecting {what}", text, pos)
    return _ws(text, pos + 1)


def _scan_array(text: str, pos: int):
    """Yield the values of the JSON array starting at ``text[pos] == "["``; return the position after it."""
    pos = _ws(text, pos + 1)
    if text.startswith("]", pos):
        return pos + 1
    while True:
        value, pos = _raw_decode(text, pos)
        yield value
        pos = _ws(text, pos)
        if text.startswith("]", pos):
            return pos + 1
        pos = _expect(text, pos, ",", "',' delimiter")


def _whole_array(text: str, pos: int):
    """(entries, position after the array) of the array at ``pos`` in one call of the same C scanner (no
    Python step per entry), or None when it is not valid: streamed then, which names the problem as always."""
    try:
        return _raw_decode(text, pos)
    except (ValueError, RecursionError):
        return None


def _scan_report(text: str, top: dict, whole: bool = False):
    """Yield the entries of the top-level ``"artifacts"`` array of ``text``, one parsed entry at a time,
    and put the other top-level members in ``top`` (``whole``: the array in one call, for a small body).
    Yields nothing when the body is not an object or
    ``artifacts`` is not an array (``validate_report_body`` then names the problem from a whole parse)."""
    pos = _ws(text, 0)
    if not text.startswith("{", pos):
        return
    pos = _ws(text, pos + 1)
    if text.startswith("}", pos):
        pos += 1
    else:
        while True:
            if not text.startswith('"', pos):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
            key, pos = _raw_decode(text, pos)
            pos = _expect(text, _ws(text, pos), ":", "':' delimiter")
            if key in top:
                raise ReportInvalid(f"The body has the member {key!r} twice.", {key: ["appears twice"]})
            if key == "artifacts" and text.startswith("[", pos):
                top[key] = None
                parsed = _whole_array(text, pos) if whole else None
                if parsed is None:
                    pos = yield from _scan_array(text, pos)
                else:
                    entries, pos = parsed
                    yield from entries
            else:
                top[key], pos = _raw_decode(text, pos)
            pos = _ws(text, pos)
            if text.startswith("}", pos):
                pos += 1
                break
            pos = _expect(text, pos, ",", "',' delimiter")
    if _ws(text, pos) != len(text):
        raise json.JSONDecodeError("Extra data", text, pos)


def iter_artifacts(raw: bytes, top: dict | None = None):
    """The entries of ``{"artifacts": [...]}``, one at a time: the standard library's C parser runs
    entry by entry, so memory holds the body and one entry, never 150,000 parsed pods, at json.loads
    speed (a body up to WHOLE_PARSE_MAX_BYTES: its array in one call of the same parser, same values).
    The other top-level members go to ``top``. Raises ReportInvalid on malformed JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReportInvalid(f"The body is not valid UTF-8: {error}", {"body": [str(error)]}) from None
    try:
        yield from _scan_report(text, {} if top is None else top, whole=len(raw) <= WHOLE_PARSE_MAX_BYTES)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, NaN, an integer of 5,000 digits
        problem = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ReportInvalid(f"The body is not valid JSON: {problem}", {"body": [problem]}) from None


_LONE_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(raw: bytes) -> bool:
    """Whether the JSON text decodes to a string holding an unpaired surrogate (a pair decodes to one
    character; only a lone one cannot be encoded as UTF-8 again). Streams, entry by entry, like the
    validation; only for a body that has such an escape at all."""
    top: dict = {}
    try:
        for entry in iter_artifacts(raw, top):
            json.dumps(entry, ensure_ascii=False).encode("utf-8")
        json.dumps(top, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except ReportInvalid:
        return False  # not JSON: the validation below names the problem
    return False


def validate_report_body(env_type: str, raw: bytes) -> int:
    """Validate a raw report body while streaming through it; return the entry count.

    A body whose ``artifacts`` yields no entry (empty, missing, not a list, not an object...) is small
    or malformed, and is re-read whole to name the structural problem precisely."""
    errors: dict[str, list[str]] = {}

    def problem(path, text):
        errors.setdefault(path, []).append(text)

    if b"\\u0000" in raw:  # PostgreSQL text cannot hold NUL: refuse it here rather than fail in ingest
        raise ReportInvalid("NUL characters (\\u0000) are not allowed in a report.", {"body": ["contains \\u0000"]})
    if _LONE_SURROGATE_HINT.search(raw) and _has_lone_surrogate(raw):
        # JSON lets "\ud800" stand alone; it is no character, so the body could be stored but never ingested.
        raise ReportInvalid("A lone UTF-16 surrogate escape (\\ud800–\\udfff without its pair) is not text.",
                            {"body": ["contains a lone surrogate escape"]})
    count, top = 0, {}
    context_fields = tuple(CONTEXT_FIELDS.get(env_type, {}).items())
    for index, entry in enumerate(iter_artifacts(raw, top)):
        count = index + 1
        if len(errors) < MAX_FIELD_ERRORS:
            _check_entry(env_type, index, entry, problem, context_fields)
    if count == 0:
        return validate_report(env_type, parse_report(raw))
    _check_top(env_type, top, problem)
    _raise_if(errors)
    return count


# Per type: the instance field that orders an artifact's instances (pods by name, tasks by ARN...).
SORT_FIELD = {EnvironmentType.K8S: "podName", EnvironmentType.ECS: "taskArn", EnvironmentType.AZURE_APPS: "app_name",
              EnvironmentType.CLOUD_RUN: "revisionName"}

Instance = tuple[str, str]  # (sort key, JSON text of the entry without its digests)


def canonicalize_body(env_type: str, raw: bytes) -> dict[tuple[str, str], list[Instance]]:
    """(artifact name, fingerprint) → its instances, streaming over the body. An instance is the
    agent's entry without its digests (pod / task / app context, creation time), kept as JSON text: a
    pod costs ~300 bytes, not ~2 KB of Python objects. ``instances_json`` turns one list into the
    stored JSON array, in a canonical order."""
    running: dict[tuple[str, str], list[Instance]] = {}
    sort_field = SORT_FIELD.get(env_type)
    for entry in _accepted_artifacts(raw):
        digests = entry.pop("digests")
        if not digests:
            continue
        key = entry.get(sort_field) if sort_field else None
        instance = (key if isinstance(key, str) else "", _encode(entry).decode())
        for pair in digests.items():
            group = running.get(pair)
            if group is None:
                running[pair] = [instance]
            else:
                group.append(instance)
    return running


# A body up to this size is parsed whole by msgspec (~3x faster than the standard library's scanner, the
# bulk of an ingest's Python time for a typical K8S report of a few hundred pods); a larger one streams
# entry by entry, so a 150,000-pod body is never held as Python objects. 1 MiB is ~2,000 pods, ~10 MB parsed.
WHOLE_PARSE_MAX_BYTES = 1 << 20
_decode = msgspec.json.Decoder().decode


def _accepted_artifacts(raw: bytes):
    """The entries of an accepted body (``validate_report_body`` passed it: an object, no member twice, no
    NaN...). msgspec gives the same values as the standard library for every JSON text both read (integers
    of any size, floats correctly rounded, the last of duplicate keys at the first one's place); what it
    refuses (a lone surrogate escape, 1e400) or a body of another shape goes through ``iter_artifacts``,
    exactly as before."""
    if len(raw) <= WHOLE_PARSE_MAX_BYTES:
        try:
            body = _decode(raw)
        except (msgspec.DecodeError, RecursionError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("artifacts"), list):
            return body["artifacts"]
    return iter_artifacts(raw)


def instances_json(instances: list[Instance]) -> str:
    instances.sort()
    return "[" + ",".join(text for _, text in instances) + "]"
