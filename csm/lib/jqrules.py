"""kosli's jq rules for custom attestation types, run with bounds like the expression language's.

A kosli custom attestation type may carry ``--jq`` rules: jq programs that must all evaluate to ``true``
against the attestation data for the attestation to be compliant (``cmd/kosli/createAttestationType.go``),
and ``--summary`` entries: named jq expressions whose values are shown with each attestation.

jq is a full programming language: ``def f: f; f`` or ``repeat(1)`` loop forever, ``[range(1e8)]``
allocates gigabytes, and all of it happens inside jq's C code, where a Python thread timeout cannot reach.
So programs never run in the server's process. Each compile check or evaluation starts one short-lived
child (``jq_worker.py``, ``python -I`` with an empty environment) that limits itself with ``resource``
before it reads a program — address space ``MEMORY_BYTES``, ``CPU_SECONDS`` of CPU, no file writes, no
new processes — and the parent kills it after ``WALL_SECONDS`` of wall time (CPU is the real bound; the
longer wall bound leaves room for a loaded machine). jq's ``env`` / ``$ENV`` therefore see
nothing of the server's environment; ``import`` / ``include`` (which read files) are refused.

The text is bounded the way ``csm/lib/expressions.py`` bounds an expression (``MAX_RULE_LENGTH`` is its
``MAX_LENGTH``), the number of rules by ``MAX_RULES``, the data by the JSON Schema limits of
``csm/lib/jsonschemas.py`` (size and depth), the values a program may yield by ``MAX_OUTPUTS``.

One child costs about 30-50 ms of CPU (interpreter start and ``import jq``); all rules and summary entries of one
attestation run in the same child.

A rule passes only when it yields at least one value and every value it yields is ``true``: a rule that
yields ``false``, a non-boolean, nothing, too many values, or fails (jq error, time or memory limit) does
not pass, and its ``reason`` says why — an attestation is never compliant by accident.
"""

import json
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from csm.lib import expressions, jsonschemas

MAX_RULES = 32
MAX_RULE_LENGTH = expressions.MAX_LENGTH
MAX_OUTPUTS = 10
MAX_VALUE_CHARS = 1000
MEMORY_BYTES = 256 * 1024 * 1024
CPU_SECONDS = 2
WALL_SECONDS = 10.0

WORKER = Path(__file__).with_name("jq_worker.py")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_COMMENT = re.compile(r"#[^\n]*")
_MODULE = re.compile(r"(?<![\w$])(import|include|module)(?![\w])")


class JqError(ValueError):
    """A rule that cannot be accepted. ``index`` is the 0-based position of the rule (or None)."""

    def __init__(self, message: str, index: int | None = None):
        self.message = message
        self.index = index
        super().__init__(message)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    reason: str
    values: list

    def as_dict(self) -> dict:
        return {"rule": self.rule, "passed": self.passed, "reason": self.reason, "values": self.values}


def _label(index: int, rule: str, what: str = "jq rule") -> str:
    shown = rule if len(rule) <= 80 else rule[:80] + "…"
    return f"{what} {index + 1} ({shown})"


def check_programs(programs, what: str = "jq rule") -> list[str]:
    """The programs as a list of strings, bounded and free of module directives, and compiled by jq.
    Raises JqError naming the first bad one and jq's own message."""
    if programs is None:
        return []
    if not isinstance(programs, list) or not all(isinstance(p, str) for p in programs):
        raise JqError(f"{what}s must be a list of jq programs (strings)")
    if len(programs) > MAX_RULES:
        raise JqError(f"at most {MAX_RULES} {what}s are allowed, got {len(programs)}")
    for index, program in enumerate(programs):
        if not program.strip():
            raise JqError(f"{what} {index + 1} is empty", index)
        if len(program) > MAX_RULE_LENGTH:
            raise JqError(f"{what} {index + 1} is longer than {MAX_RULE_LENGTH} characters", index)
        if _MODULE.search(_COMMENT.sub("", _STRING.sub('""', program))):
            raise JqError(f"{_label(index, program, what)}: jq modules (import, include) are not allowed", index)
    answers, stopped = _run("compile", programs, None)
    for index, program in enumerate(programs):
        answer = answers[index] if index < len(answers) else None
        if answer is None:
            raise JqError(f"{_label(index, program, what)}: {stopped or 'could not be compiled'}", index)
        if "error" in answer:
            raise JqError(f"{_label(index, program, what)}: {_jq_message(answer['error'])}", index)
    return programs


def evaluate(rules: list[str], expressions: list[str], data) -> tuple[list[RuleResult], list[dict]]:
    """Run ``rules`` and then ``expressions`` (summary entries) against ``data`` in one child: one
    RuleResult per rule, and per expression ``{"value": its first value}`` or ``{"error": message}``
    (numbers that are not whole come back as their decimal text, see ``_no_floats``)."""
    rules, expressions = list(rules or []), list(expressions or [])
    programs = rules + expressions
    if not programs:
        return [], []
    try:
        jsonschemas.check_limits(data, "attestation data", jsonschemas.MAX_DOCUMENT_DEPTH,
                                 jsonschemas.MAX_DOCUMENT_BYTES)
    except jsonschemas.SchemaRejected as exc:
        return ([RuleResult(rule, False, f"not evaluated: {exc.message}", []) for rule in rules],
                [{"error": exc.message} for _ in expressions])
    answers, stopped = _run("run", programs, data)
    results = []
    for index, rule in enumerate(rules):
        if index < len(answers):
            results.append(_judge(rule, answers[index]))
        elif index == len(answers):
            results.append(RuleResult(rule, False, f"stopped: {stopped}", []))
        else:
            results.append(RuleResult(rule, False, f"not evaluated: jq rule {len(answers) + 1} was stopped", []))
    values = []
    for index in range(len(rules), len(programs)):
        answer = answers[index] if index < len(answers) else {"error": f"stopped: {stopped}"}
        if "error" in answer:
            values.append({"error": _jq_message(answer["error"])})
        else:
            values.append({"value": _no_floats(answer["values"][0]) if answer["values"] else None})
    return results, values


def evaluate_rules(rules: list[str], data) -> list[RuleResult]:
    """Run every rule against ``data``; one RuleResult per rule, in order."""
    return evaluate(rules, [], data)[0]


def evaluate_values(programs: list[str], data) -> list[dict]:
    """Run each program (a summary entry's expression) against ``data``."""
    return evaluate([], programs, data)[1]


def _no_floats(value):
    """Values are kept in attestation results, which the journal hashes as canonical JSON: no floats there.
    A whole number becomes an int, any other number its decimal text (``86.2`` → ``"86.2"``)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, dict):
        return {key: _no_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_floats(item) for item in value]
    return value


def _judge(rule: str, answer: dict) -> RuleResult:
    result = _judge_raw(rule, answer)
    return RuleResult(result.rule, result.passed, result.reason, _no_floats(result.values))


def _judge_raw(rule: str, answer: dict) -> RuleResult:
    values = answer.get("values", [])
    if "error" in answer:
        return RuleResult(rule, False, f"jq error: {_jq_message(answer['error'])}", values)
    if answer.get("more"):
        return RuleResult(rule, False, f"yields more than {MAX_OUTPUTS} values", values)
    if not values:
        return RuleResult(rule, False, "yields no value", values)
    for value in values:
        if not isinstance(value, bool):
            return RuleResult(rule, False, f"yields {_shown(value)}, not a boolean", values)
        if value is False:
            return RuleResult(rule, False, "is false", values)
    return RuleResult(rule, True, "is true", values)


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:80] + "…"


def _jq_message(message: str) -> str:
    """jq's compile errors come as ``jq: error: ... \\njq: 1 compile error``: keep the lines that say what."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    lines = [line for line in lines if not re.fullmatch(r"jq: \d+ compile errors?", line)]
    text = " ".join(lines)
    return text.removeprefix("jq: error: ") or "failed"


def _run(mode: str, programs: list[str], data) -> tuple[list[dict], str]:
    """Run the worker. Returns the answers it gave (one per program, in order, possibly fewer than
    programs when it was stopped) and, when it was stopped, why."""
    request = {"mode": mode, "programs": programs, "data": data, "max_outputs": MAX_OUTPUTS,
               "max_value_chars": MAX_VALUE_CHARS, "memory_bytes": MEMORY_BYTES, "cpu_seconds": CPU_SECONDS}
    stopped = ""
    try:
        # a fixed command (this interpreter, our worker file); the untrusted program travels on stdin
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-I", str(WORKER)], input=json.dumps(request).encode(), stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env={}, timeout=WALL_SECONDS, close_fds=True, check=False)
        output, code = done.stdout, done.returncode
    except subprocess.TimeoutExpired as exc:
        output, code = exc.stdout or b"", None
        stopped = f"ran longer than the limit of {WALL_SECONDS:g} seconds"
    except OSError as exc:  # no process could be started (e.g. the host's process limit): nothing was judged
        output, code = b"", None
        stopped = f"the jq evaluator could not start ({exc.strerror or exc})"
    if code is not None and code != 0:
        if code == -signal.SIGXCPU:
            stopped = f"used more than the limit of {CPU_SECONDS} CPU seconds"
        elif code in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGKILL):
            stopped = f"needed more than the memory limit of {MEMORY_BYTES // (1024 * 1024)} MiB"
        else:
            stopped = f"the jq evaluator failed (exit status {code})"
    answers = []
    for line in output.decode("utf-8", "replace").splitlines():
        try:
            answers.append(json.loads(line))
        except ValueError:
            break
    if not stopped and len(answers) < len(programs):
        stopped = "the jq evaluator stopped early"
    return answers[: len(programs)], stopped
