"""Bounded parsing of everything a user sends: JSON and YAML documents, integers, pages, dates and
relative times. Each parser checks its limits BEFORE the expensive (recursive, allocating) work and
raises ``InputError`` naming the parameter (``field``) and the limit, never RecursionError,
OverflowError or a database error further down. Django-free: limits are arguments; callers pass the
settings (see docs/api.md, "Input limits").

- ``load_json(data, field, max_bytes, max_depth, require_object)`` — size (413), nesting depth by a cheap
  pre-scan (400), NaN / Infinity / numbers that overflow a double (400), object at the top level (400).
- ``load_yaml(text, field, max_bytes, max_depth, max_nodes, max_aliases)`` — same for YAML, with the depth,
  node and alias bounds checked on the parser's event stream before composing, so an over-deep or
  alias-bomb document stops early.
- ``parse_int`` (ASCII digits only, range), ``parse_page``, ``parse_datetime`` (ISO 8601, representable in
  UTC), ``relative_time`` (``N.days.ago`` that stays within the calendar).
"""

import json
import re
from datetime import UTC, datetime, timedelta
from itertools import accumulate

import yaml

DEFAULT_JSON_MAX_DEPTH = 64
DEFAULT_YAML_MAX_DEPTH = 32
DEFAULT_YAML_MAX_NODES = 20_000
DEFAULT_YAML_MAX_ALIASES = 50
INT64_MAX = 2**63 - 1
# PostgreSQL's OFFSET and a page number times a page size must stay inside a bigint.
MAX_PAGE = 10_000_000


class InputError(ValueError):
    """A refused input: ``message`` for the person, ``field`` naming the parameter, HTTP ``status`` (400
    or 413) and a machine ``code`` (``invalid`` / ``too_large``)."""

    def __init__(self, message: str, field: str = "body", status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.code = "too_large" if status == 413 else "invalid"


# --- JSON -------------------------------------------------------------------------------------------


def _no_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400: would become "Infinity", which no JSON column holds
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


# The C scanner of the standard library, one value at a time; NaN / Infinity refused, as JSON does. The
# report path (snapshots/report_bodies.py) streams a body entry by entry through it.
raw_decode = json.JSONDecoder(parse_constant=_no_constant).raw_decode
_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
# A JSON string with its escapes: removed first, so "[[[" inside a string is not nesting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether ``text`` nests arrays / objects deeper than ``max_depth``, without recursing: strings and
    everything but brackets are dropped by regular expressions and the running depth is summed by
    ``accumulate`` (all at C speed: ~0.1 s for a 9 MB SBOM), so this runs before the recursive parser
    could reach Python's recursion limit. A body with fewer opening brackets than the limit is answered
    at once."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for start in range(0, len(brackets), 1 << 16):  # in chunks, so a deep body stops at its first chunk
        chunk = brackets[start:start + (1 << 16)]
        if max(accumulate(map(_STEP.__getitem__, chunk), initial=depth)) > max_depth:
            return True
        depth += chunk.count("[") + chunk.count("{") - chunk.count("]") - chunk.count("}")
    return False


def too_deep(field: str, max_depth: int, what: str = "JSON") -> InputError:
    return InputError(f"{field} is {what} nested more than {max_depth} levels deep (the limit)", field)


def load_json(data: bytes | str, field: str = "body", *, max_bytes: int | None = None,
              max_depth: int = DEFAULT_JSON_MAX_DEPTH, require_object: bool = False):
    """Parse user JSON within limits; raises InputError (413 over ``max_bytes``, else 400)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(f"{field} is larger than the limit of {max_bytes} bytes", field, 413)
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"{field} is not UTF-8: {error}", field) from None
    if data.startswith("\ufeff"):  # JSONDecoder would only say "Expecting value"
        raise InputError(f"{field} is not valid JSON: Unexpected UTF-8 BOM (a byte-order mark)", field)
    if json_depth_exceeds(data, max_depth):
        raise too_deep(field, max_depth)
    try:
        value = _decoder.decode(data)
    except RecursionError:  # cannot happen below the depth limit; kept so no path can answer a 500
        raise too_deep(field, max_depth) from None
    except ValueError as error:  # JSONDecodeError, NaN, 1e400, an integer of more than 4,300 digits
        raise InputError(f"{field} is not valid JSON: {error}", field) from None
    if require_object and not isinstance(value, dict):
        raise InputError(f"{field} must be a JSON object", field)
    return value


# --- YAML -------------------------------------------------------------------------------------------


# libyaml's C parser when PyYAML was built with it (~50x faster than the pure-Python one: 20,000 nodes of
# YAML took seconds of CPU in pure Python). Both give the same data for a safe load.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _check_yaml_events(text: str, field: str, max_depth: int, max_nodes: int, max_aliases: int) -> None:
    """Walk the parser's event stream (iterative: the parser keeps its own state stack) counting depth,
    nodes and aliases, and stop at the first one over a bound — before the composer, which recurses once
    per nesting level and, with aliases, can hand back a structure of 10**9 leaves ("billion laughs")."""
    try:
        _walk_yaml_events(text, field, max_depth, max_nodes, max_aliases)
    except yaml.YAMLError as error:  # libyaml stops at 1,000 levels on its own, with its own words
        if "maximum nesting depth" in str(error):
            raise too_deep(field, max_depth, "YAML") from None
        raise


def _walk_yaml_events(text: str, field: str, max_depth: int, max_nodes: int, max_aliases: int) -> None:
    depth = nodes = aliases = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, _START):
            depth += 1
            nodes += 1
            if depth > max_depth:
                raise too_deep(field, max_depth, "YAML")
        elif isinstance(event, _END):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > max_aliases:
                raise InputError(f"{field} uses more than {max_aliases} YAML aliases (the limit)", field)
        if nodes > max_nodes:
            raise InputError(f"{field} has more than {max_nodes} YAML nodes (the limit)", field)


def load_yaml(text: str, field: str = "template", *, max_bytes: int, max_depth: int = DEFAULT_YAML_MAX_DEPTH,
              max_nodes: int = DEFAULT_YAML_MAX_NODES, max_aliases: int = DEFAULT_YAML_MAX_ALIASES):
    """``yaml.safe_load`` within limits: InputError 413 over ``max_bytes`` (UTF-8), 400 over the depth, node
    or alias bound; ``yaml.YAMLError`` for a malformed document (the caller names it)."""
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > max_bytes else len(text)
    if size > max_bytes:
        raise InputError(f"{field} is larger than the limit of {max_bytes} bytes", field, 413)
    _check_yaml_events(text, field, max_depth, max_nodes, max_aliases)
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)  # nosec B506
    except RecursionError:  # below the depth bound this cannot happen; never a 500 if it does
        raise too_deep(field, max_depth, "YAML") from None


# --- scalars ----------------------------------------------------------------------------------------

_ASCII_DIGITS = re.compile(r"[0-9]+")


def parse_int(text, field: str, *, minimum: int | None = None, maximum: int = INT64_MAX) -> int:
    """A query / path integer: ASCII digits only (``str.isdigit()`` also accepts '²', which ``int()`` then
    refuses; ``int()`` itself accepts '٣' and ' 4 '), at most 19 digits, within [minimum, maximum]."""
    text = str(text).strip()
    if not _ASCII_DIGITS.fullmatch(text) or len(text) > 19:
        raise InputError(f"{field} must be a whole number in ASCII digits, at most {maximum}", field)
    value = int(text)
    if value > maximum or (minimum is not None and value < minimum):
        bounds = f"from {minimum} to {maximum}" if minimum is not None else f"at most {maximum}"
        raise InputError(f"{field} must be {bounds}", field)
    return value


def parse_page(text, field: str = "page", *, maximum: int = MAX_PAGE) -> int:
    """A 1-based page number (a missing value is page 1)."""
    if text is None or str(text).strip() == "":
        return 1
    return parse_int(text, field, minimum=1, maximum=maximum)


def parse_datetime(text: str, field: str) -> datetime:
    """An ISO 8601 time (``Z`` allowed; no offset means UTC) → an aware UTC datetime. 400 when malformed or
    when it falls outside years 1-9999 once shifted to UTC (``0001-01-01T00:00:00+14:00``)."""
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{field} must be an ISO 8601 time (2026-11-24T14:00:00Z)", field) from None
    return to_utc(moment, field)


def to_utc(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{field} is out of range once converted to UTC (years 1 to 9999)", field) from None


def relative_time(count: str, unit_seconds: int, now: datetime, field: str) -> datetime:
    """``now`` minus ``count`` units (``3.days.ago``); 400 when that is before year 1."""
    number = parse_int(count, field)
    try:
        return now - timedelta(seconds=number * unit_seconds)
    except OverflowError:
        raise InputError(f"{field}: {count} units ago is before year 1 (out of range)", field) from None
