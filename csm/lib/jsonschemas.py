"""JSON Schema for documents users define (custom attestation types), bounded and without fetching.

jsonschema resolves a ``$ref`` it does not hold by *downloading* it (urllib, following redirects, no
timeout, any scheme urllib knows — ``file://`` included), so a tenant's schema could make csm read
its own network and disk. Here nothing is ever fetched: validators get a ``referencing`` registry that
knows only the schema's own document and the bundled standard metaschemas, and whose ``retrieve``
refuses every URI. ``check_schema`` rejects, at creation, a schema whose ``$ref`` does not resolve
inside itself, naming the reference.

Every user document is bounded before any expensive work: a cheap iterative walk checks nesting
depth and size first (a 500-level schema pinned a CPU for minutes inside the metaschema check). Then
validation itself is bounded: each keyword evaluation spends one step of a budget (``$ref`` chains
can make a small schema exponential), with a wall-clock deadline as a second guard; regular
expressions (``pattern``, ``patternProperties``) run on RE2, which has no catastrophic backtracking;
``uniqueItems`` is linear. ``format`` is never asserted (no checker, so none can fetch or be slow).

Django-free: callers turn ``SchemaRejected`` into their own errors (``code`` "too_large" → 413).
"""

import contextvars
import functools
import json
import time

import jsonschema
import re2
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema import ValidationError
from jsonschema.exceptions import best_match
from jsonschema_specifications import REGISTRY as STANDARD_METASCHEMAS

MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32
MAX_PATTERN_LENGTH = 1000
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_DOCUMENT_DEPTH = 64
MAX_VALIDATION_STEPS = 50_000  # about a second of jsonschema's work; far beyond any attestation's needs
MAX_VALIDATION_SECONDS = 5.0
REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
DEFAULT_VALIDATOR = jsonschema.Draft202012Validator


class SchemaRejected(ValueError):
    """A schema (or a document to validate) csm will not work with: ``message`` says why and names
    the limit or the reference; ``code`` is "too_large" for a size limit (HTTP 413), else "invalid";
    ``subject`` is "schema" when the schema is at fault, "document" when the validated document (or the
    work validating it) is."""

    def __init__(self, message: str, code: str = "invalid", subject: str = "schema"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.subject = subject


def _refuse_to_retrieve(uri: str):
    # NoSuchResource makes referencing report the $ref as unresolvable; nothing is ever opened.
    raise referencing.exceptions.NoSuchResource(ref=uri)


NO_FETCH_REGISTRY = STANDARD_METASCHEMAS.combine(referencing.Registry(retrieve=_refuse_to_retrieve))


# --- limits --------------------------------------------------------------------------------------------


def _scalar_size(value) -> int:
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2  # no str(): huge ints are slow (and limited) to convert
    return 24


def check_limits(document, what: str, max_depth: int, max_bytes: int) -> None:
    """Raise SchemaRejected when ``document`` nests deeper than ``max_depth`` containers or its JSON is
    (about) larger than ``max_bytes``. Iterative and stops at the first excess, so it is cheap whatever
    the document."""
    subject = "schema" if what == "schema" else "document"
    stack = [(document, 1)]
    size = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                raise SchemaRejected(f"{what} is nested deeper than the limit of {max_depth} levels",
                                     subject=subject)
            size += 2
            items = node.items() if isinstance(node, dict) else ((None, value) for value in node)
            for key, value in items:
                size += 1 + (_scalar_size(key) + 1 if key is not None else 0)
                if isinstance(value, (dict, list)):
                    stack.append((value, depth + 1))
                else:
                    size += _scalar_size(value)
        else:
            size += _scalar_size(node)
        if size > max_bytes:
            raise SchemaRejected(f"{what} is larger than the limit of {max_bytes} bytes", code="too_large",
                                 subject=subject)


# --- the schema check ----------------------------------------------------------------------------------


def _dialect(schema) -> type:
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    if dialect is None:
        return DEFAULT_VALIDATOR
    if not isinstance(dialect, str) or referencing.jsonschema.specification_with(dialect, default=None) is None:
        raise SchemaRejected(f"schema $schema {str(dialect)[:200]!r} is not a standard JSON Schema dialect")
    return jsonschema.validators.validator_for(schema, default=DEFAULT_VALIDATOR)


def _compile_pattern(pattern: str):
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise SchemaRejected(f"schema pattern {pattern[:60]!r}... is longer than the limit of "
                             f"{MAX_PATTERN_LENGTH} characters")
    try:
        return _re2(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise SchemaRejected(f"schema pattern {pattern[:200]!r} is not a regular expression csm can run "
                             f"(RE2 syntax, no look-around or back-references): {reason[:200]}") from None


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a user's bad pattern is a 400, not a line in the server log


@functools.lru_cache(maxsize=512)
def _re2(pattern: str):
    return re2.compile(pattern, _RE2_OPTIONS)


def _check_node(resolver, contents: dict, keywords: set) -> None:
    for keyword in REF_KEYWORDS:
        ref = contents.get(keyword)
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except referencing.exceptions.Unresolvable:
                raise SchemaRejected(
                    f"schema {keyword} {ref[:200]!r} does not resolve inside the schema; csm never fetches "
                    "remote or file references (put the definition under $defs and refer to it as "
                    "'#/$defs/name')") from None
    if isinstance(contents.get("pattern"), str):
        _compile_pattern(contents["pattern"])
    if isinstance(contents.get("patternProperties"), dict):
        for pattern in contents["patternProperties"]:
            _compile_pattern(pattern)
    keywords.update(key for key in ("patternProperties", "unevaluatedProperties") if key in contents)


def _check_references(schema) -> None:
    """Every reference resolves within the document (or to a standard metaschema); every pattern is
    RE2. Walks the subschemas the way validation will (``referencing`` knows each draft's keywords)."""
    dialect = schema.get("$schema")
    specification = (referencing.jsonschema.specification_with(dialect) if dialect
                     else referencing.jsonschema.DRAFT202012)
    root = specification.create_resource(schema)
    keywords: set = set()
    stack = [(NO_FETCH_REGISTRY.resolver_with_root(root), root)]
    while stack:
        resolver, resource = stack.pop()
        if isinstance(resource.contents, dict):
            if resource is not root and "$schema" in resource.contents:
                # jsonschema would validate that part with the stock (unbounded) validator class
                raise SchemaRejected("schema: $schema is allowed only at the top of the schema")
            _check_node(resolver, resource.contents, keywords)
        stack.extend((resolver.in_subresource(sub), sub) for sub in resource.subresources())
    if keywords == {"patternProperties", "unevaluatedProperties"}:
        # jsonschema evaluates patternProperties for unevaluatedProperties with Python's backtracking
        # re, outside the keyword functions we can give RE2 to.
        raise SchemaRejected("schema may not combine unevaluatedProperties with patternProperties")


def check_schema(schema) -> None:
    """Raise SchemaRejected unless ``schema`` is a JSON Schema csm will validate with: within the size
    and depth limits (checked first), valid against its metaschema, every ``$ref`` resolving inside
    the document, every pattern an RE2 expression."""
    check_limits(schema, "schema", MAX_SCHEMA_DEPTH, MAX_SCHEMA_BYTES)
    if not isinstance(schema, (dict, bool)):
        raise SchemaRejected("schema must be an object")
    cls = _dialect(schema)
    meta = jsonschema.validators.validator_for(cls.META_SCHEMA, default=cls)
    error = best_match(meta(cls.META_SCHEMA, registry=NO_FETCH_REGISTRY).iter_errors(schema))
    if error is not None:
        where = "".join(f"[{part!r}]" for part in error.absolute_path)
        raise SchemaRejected(f"schema{where} is not valid JSON Schema: {error.message[:500]}")
    if isinstance(schema, dict):
        _check_references(schema)


# --- bounded validation --------------------------------------------------------------------------------


class _Budget:
    def __init__(self, steps: int, seconds: float):
        self.steps = steps
        self.deadline = time.monotonic() + seconds


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("jsonschema_budget", default=None)


def _spend() -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise SchemaRejected(f"validation against the schema needs more than the limit of {MAX_VALIDATION_STEPS} "
                             "steps (a schema whose references multiply its work?)", subject="document")
    if time.monotonic() > budget.deadline:
        raise SchemaRejected(f"validation against the schema took longer than the limit of "
                             f"{MAX_VALIDATION_SECONDS:g} seconds", subject="document")


def _counted(keyword_function):
    @functools.wraps(keyword_function)
    def counted(validator, value, instance, schema):
        _spend()
        return keyword_function(validator, value, instance, schema)

    return counted


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance[:200]!r} does not match {pattern!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        compiled = _compile_pattern(pattern)
        for key, value in instance.items():
            if compiled.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema):
    # jsonschema's own version matches patternProperties with Python's re; same semantics on RE2.
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [_compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [key for key in instance
              if key not in properties and not any(p.search(key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(extra) for extra in sorted(extras)[:20])
        yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")


def _frozen(value):
    """A hashable form where equal JSON values (1 == 1.0, but true != 1) are equal."""
    if isinstance(value, dict):
        return ("object", frozenset((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_frozen(item) for item in value))
    if isinstance(value, bool):
        return ("bool", value)
    return (type(value).__name__ if not isinstance(value, (int, float)) else "number", value)


def _unique_items(validator, unique, instance, schema):
    # jsonschema compares unhashable items pairwise: quadratic in the array's length.
    if not unique or not validator.is_type(instance, "array"):
        return
    seen = set()
    for item in instance:
        key = _frozen(item)
        if key in seen:
            yield ValidationError(f"{json.dumps(item)[:200]} is a duplicate item (uniqueItems)")
            return
        seen.add(key)


_REPLACED = {"pattern": _pattern, "patternProperties": _pattern_properties,
             "additionalProperties": _additional_properties, "uniqueItems": _unique_items}


@functools.cache
def _bounded_class(cls):
    keywords = {name: _counted(_REPLACED.get(name, function)) for name, function in cls.VALIDATORS.items()}
    return jsonschema.validators.extend(cls, validators=keywords)


@functools.lru_cache(maxsize=256)
def _validator_for_text(text: str):
    schema = json.loads(text)
    check_schema(schema)
    cls = _bounded_class(_dialect(schema))
    return cls(schema, registry=NO_FETCH_REGISTRY)


def validator_for(schema):
    """A validator for ``schema`` (which must pass ``check_schema``, re-checked here: rows stored before
    the check existed may hold anything) that can never fetch a reference. Its keyword steps are bounded
    only inside ``first_error``; use that to validate user documents."""
    check_limits(schema, "schema", MAX_SCHEMA_DEPTH, MAX_SCHEMA_BYTES)
    return _validator_for_text(json.dumps(schema, sort_keys=True))


def first_error(schema, document, what: str = "document") -> ValidationError | None:
    """The most relevant validation error of ``document`` against ``schema``, or None when it is valid.

    Raises SchemaRejected when the schema is unusable (limits, metaschema, an unresolvable ``$ref`` —
    named, never fetched) or when the document or the validation work exceeds a limit."""
    validator = validator_for(schema)
    check_limits(document, what, MAX_DOCUMENT_DEPTH, MAX_DOCUMENT_BYTES)
    token = _BUDGET.set(_Budget(MAX_VALIDATION_STEPS, MAX_VALIDATION_SECONDS))
    try:
        return best_match(validator.iter_errors(document))
    except referencing.exceptions.Unresolvable as exc:
        ref = str(getattr(exc, "ref", ""))[:200]
        raise SchemaRejected(f"schema $ref {ref!r} does not resolve inside the schema; csm never fetches "
                             "remote or file references") from None
    except RecursionError:
        raise SchemaRejected("validation against the schema recursed without end (a $ref that refers to "
                             "itself?)") from None
    finally:
        _BUDGET.reset(token)
