"""A small, safe expression language for policy conditions and custom attestation rules.

Examples::

    coverage >= 80 and not flaky
    flow.name == "runtime" or flow.tags.risk-level in ["high", "critical"]
    exists(flow) and matches(artifact.name, "^datadog:")

Grammar (no arithmetic, no attribute access, no Python ``eval``)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := primary (("==" | "!=" | "<" | ">" | "<=" | ">=" | "in" | "not" "in") primary)?
    primary    := literal | list | call | path | "(" expr ")"
    path       := NAME ("." NAME | "[" (STRING | INT) "]")*
    call       := NAME "(" [expr ("," expr)*] ")"     (only allow-listed functions)
    literal    := INT | DECIMAL | STRING | true | false | null

Names may contain hyphens after the first character (``flow.tags.risk-level``): the language has
no minus operator. A path looks up keys of the context dict (and indexes of lists) only — never
Python attributes — and is ``null`` when any part is missing, so ``exists(flow)`` works.

Hostile input is bounded: the text length, the nesting depth, list sizes and string literal sizes are
limited at compile time; ``matches`` uses RE2 (linear time, no catastrophic backtracking) with bounded
pattern and subject lengths. Every problem is an ``ExpressionError`` with a message and a position.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import re2

MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_LIST_ITEMS = 1000
MAX_PATTERN_LENGTH = 1024
MAX_SUBJECT_LENGTH = 100_000


class ExpressionError(ValueError):
    """A syntax or evaluation error. ``position`` is a 0-based offset in the text (or None)."""

    def __init__(self, message: str, position: int | None = None):
        self.message = message
        self.position = position
        super().__init__(message if position is None else f"{message} (at position {position + 1})")


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<decimal>\d+\.\d+)
  | (?P<int>\d+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "True", "False", "None"}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any
    pos: int


def _unquote(raw: str, pos: int) -> str:
    body = raw[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            nxt = body[index + 1]
            if nxt not in _ESCAPES:
                raise ExpressionError(f"unknown escape \\{nxt} in string", pos + index + 1)
            out.append(_ESCAPES[nxt])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            snippet = text[pos : pos + 10]
            if text[pos] in "\"'":
                raise ExpressionError("unterminated string", pos)
            raise ExpressionError(f"unexpected character {snippet[0]!r}", pos)
        kind = match.lastgroup
        raw = match.group()
        if kind == "int":
            tokens.append(_Token("literal", int(raw), pos))
        elif kind == "decimal":
            try:
                tokens.append(_Token("literal", Decimal(raw), pos))
            except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
                raise ExpressionError(f"bad number {raw}", pos) from None
        elif kind == "string":
            tokens.append(_Token("literal", _unquote(raw, pos), pos))
        elif kind == "op":
            tokens.append(_Token("op", raw, pos))
        elif kind == "name":
            if raw in ("true", "True"):
                tokens.append(_Token("literal", True, pos))
            elif raw in ("false", "False"):
                tokens.append(_Token("literal", False, pos))
            elif raw in ("null", "None"):
                tokens.append(_Token("literal", None, pos))
            elif raw in _KEYWORDS:
                tokens.append(_Token("keyword", raw, pos))
            elif raw.startswith("__"):
                raise ExpressionError(f"names starting with '__' are not allowed ({raw})", pos)
            else:
                tokens.append(_Token("name", raw, pos))
        pos = match.end()
    tokens.append(_Token("end", None, len(text)))
    return tokens


# AST nodes: tuples keep evaluation simple and make the tree inert data.
#   ("lit", value) ("path", name, [keys]) ("call", fname, [args], pos) ("list", [items])
#   ("not", node) ("and", a, b) ("or", a, b) ("cmp", op, a, b, pos)


class _Parser:
    def __init__(self, text: str, functions: set[str]):
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.functions = functions

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, kind: str, value=None) -> _Token | None:
        token = self.current
        if token.kind == kind and (value is None or token.value == value):
            return self.advance()
        return None

    def expect(self, kind: str, value=None, what: str = "") -> _Token:
        token = self.accept(kind, value)
        if token is None:
            found = "end of expression" if self.current.kind == "end" else repr(self.current.value)
            raise ExpressionError(f"expected {what or value or kind}, found {found}", self.current.pos)
        return token

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels", self.current.pos)

    def parse(self):
        node = self.parse_or()
        if self.current.kind != "end":
            raise ExpressionError(f"unexpected {self.current.value!r}", self.current.pos)
        return node

    def parse_or(self):
        node = self.parse_and()
        while self.accept("keyword", "or"):
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_not()
        while self.accept("keyword", "and"):
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self):
        if self.current.kind == "keyword" and self.current.value == "not" and not self._is_not_in():
            self.advance()
            self.nested()
            node = ("not", self.parse_not())
            self.depth -= 1
            return node
        return self.parse_comparison()

    def _is_not_in(self) -> bool:
        nxt = self.tokens[self.index + 1]
        return nxt.kind == "keyword" and nxt.value == "in"

    def parse_comparison(self):
        left = self.parse_primary()
        token = self.current
        op = None
        if token.kind == "op" and token.value in ("==", "!=", "<", ">", "<=", ">="):
            op = self.advance().value
        elif token.kind == "keyword" and token.value == "in":
            self.advance()
            op = "in"
        elif token.kind == "keyword" and token.value == "not" and self._is_not_in():
            self.advance()
            self.advance()
            op = "not in"
        if op is None:
            return left
        right = self.parse_primary()
        after = self.current
        if after.kind == "op" and after.value in ("==", "!=", "<", ">", "<=", ">="):
            raise ExpressionError("chained comparisons are not supported; use 'and'", after.pos)
        return ("cmp", op, left, right, token.pos)

    def parse_primary(self):
        token = self.current
        if token.kind == "literal":
            self.advance()
            return ("lit", token.value)
        if self.accept("op", "("):
            self.nested()
            node = self.parse_or()
            self.expect("op", ")", "')'")
            self.depth -= 1
            return node
        if self.accept("op", "["):
            self.nested()
            items = []
            if not self.accept("op", "]"):
                while True:
                    items.append(self.parse_or())
                    if len(items) > MAX_LIST_ITEMS:
                        raise ExpressionError(f"lists hold at most {MAX_LIST_ITEMS} items", token.pos)
                    if self.accept("op", "]"):
                        break
                    self.expect("op", ",", "',' or ']'")
            self.depth -= 1
            return ("list", items)
        if token.kind == "name":
            self.advance()
            if self.accept("op", "("):
                if token.value not in self.functions:
                    known = ", ".join(sorted(self.functions)) or "none"
                    raise ExpressionError(f"unknown function {token.value}() (available: {known})", token.pos)
                self.nested()
                args = []
                if not self.accept("op", ")"):
                    while True:
                        args.append(self.parse_or())
                        if self.accept("op", ")"):
                            break
                        self.expect("op", ",", "',' or ')'")
                self.depth -= 1
                return ("call", token.value, args, token.pos)
            keys = []
            while True:
                if self.accept("op", "."):
                    keys.append(self.expect("name", what="a name after '.'").value)
                elif self.accept("op", "["):
                    key = self.expect("literal", what="a string or integer key")
                    if not isinstance(key.value, (str, int)) or isinstance(key.value, bool):
                        raise ExpressionError("keys in [...] are strings or integers", key.pos)
                    keys.append(key.value)
                    self.expect("op", "]", "']'")
                else:
                    break
            return ("path", token.value, keys)
        if token.kind == "end":
            raise ExpressionError("expression ends too early", token.pos)
        raise ExpressionError(f"unexpected {token.value!r}", token.pos)


def _exists(value) -> bool:
    return value is not None


def _matches(value, pattern) -> bool:
    if value is None:
        return False
    if not isinstance(value, str) or not isinstance(pattern, str):
        raise ExpressionError("matches() takes a string and a pattern string")
    if len(pattern) > MAX_PATTERN_LENGTH or len(value) > MAX_SUBJECT_LENGTH:
        raise ExpressionError("matches() pattern or subject too long")
    try:
        return re2.search(pattern, value) is not None
    except re2.error as error:
        raise ExpressionError(f"invalid pattern {pattern!r}: {error}") from None


def _length(value) -> int:
    if not isinstance(value, (str, list, dict)):
        raise ExpressionError("len() takes a string, list or object")
    return len(value)


DEFAULT_FUNCTIONS: dict[str, Callable[..., Any]] = {"exists": _exists, "matches": _matches, "len": _length}


def _lookup(context: dict, name: str, keys: list) -> Any:
    value = context.get(name) if isinstance(context, dict) else None
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key) if isinstance(key, str) else None
        elif isinstance(value, list) and isinstance(key, int) and not isinstance(key, bool):
            value = value[key] if -len(value) <= key < len(value) else None
        else:
            return None
    return value


def _number(value):
    return Decimal(str(value)) if isinstance(value, float) else value


def _compare(op: str, left, right, pos: int) -> bool:
    if op == "==":
        return _number(left) == _number(right)
    if op == "!=":
        return _number(left) != _number(right)
    if op in ("in", "not in"):
        if isinstance(right, str):
            if not isinstance(left, str):
                raise ExpressionError("'in' with a string on the right needs a string on the left", pos)
            found = left in right
        elif isinstance(right, (list, dict)):
            found = _number(left) in [_number(item) for item in right] if isinstance(right, list) else left in right
        elif right is None:
            found = False
        else:
            raise ExpressionError("'in' needs a list, an object or a string on the right", pos)
        return found if op == "in" else not found
    left, right = _number(left), _number(right)
    numeric = (int, Decimal)
    same_kind = (
        isinstance(left, numeric) and isinstance(right, numeric) and not isinstance(left, bool)
        and not isinstance(right, bool)
    ) or (isinstance(left, str) and isinstance(right, str))
    if not same_kind:
        raise ExpressionError(
            f"cannot compare {type(left).__name__ if left is not None else 'null'} with "
            f"{type(right).__name__ if right is not None else 'null'} using {op}", pos)
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


class Expression:
    """A compiled expression: inert syntax tree plus the functions it may call."""

    def __init__(self, text: str, tree, functions: dict[str, Callable[..., Any]]):
        self.text = text
        self._tree = tree
        self._functions = functions

    def __repr__(self):
        return f"Expression({self.text!r})"

    def evaluate(self, context: dict) -> Any:
        return self._eval(self._tree, context)

    def test(self, context: dict) -> bool:
        """Evaluate and return a boolean (Python truthiness of the result)."""
        return bool(self.evaluate(context))

    def _eval(self, node, context):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "path":
            return _lookup(context, node[1], node[2])
        if kind == "list":
            return [self._eval(item, context) for item in node[1]]
        if kind == "not":
            return not self._eval(node[1], context)
        if kind == "and":
            return bool(self._eval(node[1], context)) and bool(self._eval(node[2], context))
        if kind == "or":
            return bool(self._eval(node[1], context)) or bool(self._eval(node[2], context))
        if kind == "cmp":
            _, op, left, right, pos = node
            return _compare(op, self._eval(left, context), self._eval(right, context), pos)
        if kind == "call":
            _, name, args, pos = node
            values = [self._eval(arg, context) for arg in args]
            try:
                return self._functions[name](*values)
            except TypeError:
                raise ExpressionError(f"{name}() got {len(values)} argument(s)", pos) from None
        raise ExpressionError(f"unknown node {kind}")  # pragma: no cover


def compile_expression(text: str, functions: dict[str, Callable[..., Any]] | None = None) -> Expression:
    """Parse ``text`` into an Expression. ``functions`` replaces the default allow-list
    (exists, matches, len) when given. Raises ExpressionError with the position of the problem."""
    if not isinstance(text, str):
        raise ExpressionError("an expression must be a string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError("expression is empty", 0)
    allowed = DEFAULT_FUNCTIONS if functions is None else functions
    tree = _Parser(text, set(allowed)).parse()
    return Expression(text, tree, allowed)


_TEMPLATE = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.DOTALL)


def unwrap_template(text: str) -> str:
    """``${{ expr }}`` → ``expr`` (policy files wrap expressions that way); other text is returned as is."""
    match = _TEMPLATE.match(text or "")
    return match.group(1) if match else text
