"""SCIM filters and PATCH paths (RFC 7644 §3.4.2.2 and §3.5.2): parsed into a small tree, evaluated against a
resource's SCIM representation (a dict).

    filter   = or-expr
    or-expr  = and-expr *("or" and-expr)              "and" binds tighter than "or"
    and-expr = unary *("and" unary)
    unary    = "not" "(" filter ")" / "(" filter ")" / attr-expr
    attr-expr= attrPath ["[" filter "]" ["." subAttr]] ("pr" / compareOp compValue)
               attrPath "[" filter "]"                 (a value path alone: some value matches)
    compValue= JSON string / number / true / false / null

Attribute names and operators compare case-insensitively; string values too, except ``id`` and
``externalId`` (caseExact in RFC 7643). A multi-valued attribute matches when one of its values does; compared
without a sub-attribute, its values' ``value`` is compared (``emails eq "x"``). Anything else is a
``ScimError(400, invalidFilter)`` (``invalidPath`` for a PATCH path)."""

import json
import re
from dataclasses import dataclass

from identity.scim.errors import ScimError

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32
CORE_SCHEMAS = ("urn:ietf:params:scim:schemas:core:2.0:user", "urn:ietf:params:scim:schemas:core:2.0:group")
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CASE_EXACT = {"id", "externalid"}
OPERATORS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}

_TOKEN = re.compile(r"""\s*(?:(?P<punct>[()\[\]])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]"]+))""")


@dataclass
class Path:
    """An attribute path: ``names`` from the resource root (an extension schema URN first, if any)."""

    names: list[str]

    def __str__(self):
        return ".".join(self.names)


@dataclass
class Compare:
    path: Path
    op: str  # one of OPERATORS or "pr"
    value: object = None


@dataclass
class ValuePath:
    """``emails[type eq "work"]`` optionally followed by ``.value eq "x"``."""

    path: Path
    filter: object
    sub: str | None = None
    op: str | None = None
    value: object = None


@dataclass
class Logical:
    op: str  # "and" / "or"
    left: object
    right: object


@dataclass
class Not:
    inner: object


def split_attr_path(text: str) -> Path:
    """``urn:...:User:name.givenName`` → Path(["name", "givenName"]); an extension's attributes keep the
    extension's URN as their first name (that is where a resource holds them)."""
    lowered = text.lower()
    if lowered == ENTERPRISE_USER.lower():  # the extension's whole object (a PATCH value's key)
        return Path([ENTERPRISE_USER])
    if lowered.startswith(ENTERPRISE_USER.lower() + ":"):
        return Path([ENTERPRISE_USER, *text[len(ENTERPRISE_USER) + 1:].split(".")])
    for urn in CORE_SCHEMAS:
        if lowered.startswith(urn + ":"):
            text = text[len(urn) + 1:]
            break
    else:
        if lowered.startswith("urn:"):
            urn, _, attr = text.rpartition(":")
            if not urn or not attr:
                raise ValueError(text)
            return Path([urn, *attr.split(".")])
    names = text.split(".")
    if not all(re.fullmatch(r"\$?[A-Za-z][A-Za-z0-9_$-]*", name) for name in names):
        raise ValueError(text)
    return Path(names)


class _Parser:
    def __init__(self, text: str, error_type: str):
        self.error_type = error_type
        if len(text) > MAX_FILTER_LENGTH:
            self.fail(f"is longer than {MAX_FILTER_LENGTH} characters")
        self.tokens = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                self.fail(f"cannot be read at character {position + 1}")
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
            while position < len(text) and text[position].isspace():
                position += 1
        self.index = 0
        self.depth = 0

    def fail(self, why: str):
        what = "filter" if self.error_type == "invalidFilter" else "path"
        raise ScimError(400, f"The {what} {why}.", self.error_type)

    def peek(self, offset=0):
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else (None, None)

    def take(self):
        token = self.peek()
        if token[0] is None:
            self.fail("ends too early")
        self.index += 1
        return token

    def expect(self, punct: str):
        kind, value = self.take()
        if kind != "punct" or value != punct:
            self.fail(f"needs '{punct}' where it has '{value}'")

    def keyword(self, *words) -> str | None:
        kind, value = self.peek()
        if kind == "word" and value.lower() in words:
            self.index += 1
            return value.lower()
        return None

    def filter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nests deeper than {MAX_DEPTH} levels")
        node = self.and_expr()
        while self.keyword("or"):
            node = Logical("or", node, self.and_expr())
        self.depth -= 1
        return node

    def and_expr(self):
        node = self.unary()
        while self.keyword("and"):
            node = Logical("and", node, self.unary())
        return node

    def unary(self):
        kind, value = self.peek()
        if kind == "word" and value.lower() == "not" and self.peek(1) == ("punct", "("):
            self.index += 2
            inner = self.filter()
            self.expect(")")
            return Not(inner)
        if (kind, value) == ("punct", "("):
            self.index += 1
            inner = self.filter()
            self.expect(")")
            return inner
        return self.attr_expr()

    def path(self) -> Path:
        kind, value = self.take()
        if kind != "word":
            self.fail(f"needs an attribute name where it has '{value}'")
        try:
            return split_attr_path(value)
        except ValueError:
            self.fail(f"names no attribute: '{value}'")

    def comparison(self):
        kind, op = self.take()
        op = (op or "").lower()
        if kind != "word" or op not in OPERATORS | {"pr"}:
            self.fail(f"has '{op}' where an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) belongs")
        if op == "pr":
            return op, None
        return op, self.value()

    def value(self):
        kind, text = self.take()
        if kind == "string":
            try:
                return json.loads(text)
            except ValueError:
                self.fail(f"has a malformed string {text}")
        if kind == "word":
            lowered = text.lower()
            if lowered in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[lowered]
            if re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text):
                return json.loads(text)
        self.fail(f"has '{text}' where a value belongs (a quoted string, a number, true, false or null)")

    def attr_expr(self):
        path = self.path()
        if self.peek() == ("punct", "["):
            self.index += 1
            inner = self.filter()
            self.expect("]")
            node = ValuePath(path, inner)
            kind, value = self.peek()
            if kind == "word" and value.startswith("."):
                self.index += 1
                node.sub = value[1:]
                node.op, node.value = self.comparison()
            return node
        op, value = self.comparison()
        return Compare(path, op, value)

    def done(self):
        kind, value = self.peek()
        if kind is not None:
            self.fail(f"has '{value}' where it should end")


def parse_filter(text: str):
    """The filter tree of ``text``; ScimError(400, invalidFilter) when it is not a SCIM filter."""
    if not (text or "").strip():
        raise ScimError(400, "The filter is empty.", "invalidFilter")
    parser = _Parser(text, "invalidFilter")
    node = parser.filter()
    parser.done()
    return node


@dataclass
class PatchPath:
    path: Path
    filter: object = None
    sub: str | None = None


def parse_patch_path(text: str) -> PatchPath:
    """``name.familyName``, ``members[value eq "x"]``, ``emails[type eq "work"].value``, an extension's
    ``urn:...:User:employeeNumber``; ScimError(400, invalidPath) otherwise."""
    parser = _Parser(text or "", "invalidPath")
    if not parser.tokens:
        parser.fail("is empty")
    result = PatchPath(parser.path())
    if parser.peek() == ("punct", "["):
        parser.index += 1
        parser.error_type = "invalidFilter"
        result.filter = parser.filter()
        parser.error_type = "invalidPath"
        parser.expect("]")
        kind, value = parser.peek()
        if kind == "word" and value.startswith("."):
            parser.index += 1
            result.sub = value[1:]
    parser.done()
    return result


# --- evaluation ---------------------------------------------------------------------------------------

def lookup(container, name: str):
    """``container[name]`` with the key compared case-insensitively; (key, value) or (None, None)."""
    if not isinstance(container, dict):
        return None, None
    if name in container:
        return name, container[name]
    lowered = name.lower()
    for key, value in container.items():
        if key.lower() == lowered:
            return key, value
    return None, None


def values_at(resource, names: list[str]) -> list:
    """Every value at ``names`` under ``resource``, multi-valued attributes flattened."""
    current = [resource]
    for name in names:
        found = []
        for item in current:
            _, value = lookup(item, name)
            if isinstance(value, list):
                found.extend(value)
            elif value is not None:
                found.append(value)
        current = found
    return current


def _scalar(value):
    if isinstance(value, dict):  # a multi-valued attribute compared as a whole compares its "value"s
        _, value = lookup(value, "value")
    return value


def _compare(actual, op: str, expected, case_exact: bool) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        if isinstance(actual, str) and actual.lower() in ("true", "false"):
            actual = actual.lower() == "true"
        return {"eq": actual == expected, "ne": actual != expected}.get(op, False)
    if expected is None:
        return {"eq": actual is None, "ne": actual is not None}.get(op, False)
    if isinstance(expected, str):
        if not isinstance(actual, str):
            actual = "" if actual is None else str(actual)
        if not case_exact:
            actual, expected = actual.lower(), expected.lower()
    elif not isinstance(actual, (int, float)):
        return False
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op in ("co", "sw", "ew"):
        if not isinstance(actual, str):
            return False
        return {"co": expected in actual, "sw": actual.startswith(expected), "ew": actual.endswith(expected)}[op]
    return {"gt": actual > expected, "ge": actual >= expected, "lt": actual < expected, "le": actual <= expected}[op]


def _present(value) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return False
    return True


def _match_values(values: list, op: str, expected, case_exact: bool) -> bool:
    values = [_scalar(v) for v in values]
    if op == "pr":
        return any(_present(v) for v in values)
    if op == "ne":  # no value equals
        return not any(_compare(v, "eq", expected, case_exact) for v in values) if values else expected is not None
    if not values:
        return op == "eq" and expected is None
    return any(_compare(v, op, expected, case_exact) for v in values)


def matches(node, resource: dict) -> bool:
    """True when ``resource`` (a SCIM representation) satisfies the filter tree ``node``."""
    if isinstance(node, Logical):
        if node.op == "and":
            return matches(node.left, resource) and matches(node.right, resource)
        return matches(node.left, resource) or matches(node.right, resource)
    if isinstance(node, Not):
        return not matches(node.inner, resource)
    if isinstance(node, Compare):
        case_exact = node.path.names[-1].lower() in CASE_EXACT
        return _match_values(values_at(resource, node.path.names), node.op, node.value, case_exact)
    if isinstance(node, ValuePath):
        for element in values_at(resource, node.path.names):
            if not isinstance(element, dict) or not matches(node.filter, element):
                continue
            if node.sub is None:
                return True
            case_exact = node.sub.lower() in CASE_EXACT
            if _match_values(values_at(element, [node.sub]), node.op, node.value, case_exact):
                return True
        return False
    raise TypeError(node)
