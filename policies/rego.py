"""Rego policies on the server: validate a policy and evaluate it against inputs, bounded.

The engine is rego-cpp (``regopy``). It runs in a child process (``policies.rego_child``), never in
the web or Celery worker: the process gets an address-space limit (``CSM_REGO_MEMORY_MB``) and a CPU
limit, and each decision a wall-clock limit (``CSM_REGO_TIMEOUT_SECONDS``); rego-cpp also aborts the
whole process on some internal errors, which a child survives. A policy that overruns is stopped
and the decision carries the reason (``error``): never ``allow``.

Rules read are those of ``kosli evaluate`` (``internal/evaluate/rego.go``): the policy is
``package policy``, ``data.policy.allow`` must be true or false, and when it is false the strings of
``data.policy.violations`` are the reasons. ``data.params`` is what ``--params`` gives.

Hashes name what was decided, so anyone can re-run it: ``source_sha256`` is the SHA-256 of the
policy source (UTF-8), ``input_sha256`` that of the input's canonical JSON (``canonical_json``).
"""

import hashlib
import json
import os
import re
import resource
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z0-9_.\"\[\]]+)\s*$", re.MULTILINE)
_ALLOW = re.compile(r"^\s*(?:default\s+)?allow\b", re.MULTILINE)
_ROOT = Path(__file__).resolve().parent.parent


class RegoSyntaxError(ValueError):
    """A policy that does not compile, or is not a kosli ``evaluate`` policy; ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None = None):
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class Decision:
    """One evaluation: ``allow`` True / False, or None when the policy could not decide (``error``)."""

    allow: bool | None
    violations: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        return {"allow": self.allow, "violations": list(self.violations), "error": self.error}


def canonical_json(value) -> str:
    """The JSON whose SHA-256 is an input's hash: keys sorted, no whitespace, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_sha256(value) -> str:
    return sha256_text(canonical_json(value))


def _limits():
    cpu = settings.CSM_REGO_TIMEOUT_SECONDS

    def apply():  # in the child, before exec (the memory limit is set by the child: rego_child)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # a backstop for the wall clock below: per process, so generous
        soft = min(cpu * 20, 600)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))
        os.setsid()

    return apply


def _stopped_reason(stderr: str, returncode: int | None) -> str:
    mb = settings.CSM_REGO_MEMORY_MB
    if "bad_alloc" in stderr or "MemoryError" in stderr:
        return f"the policy was stopped: it needed more than {mb} MiB of memory"
    return (f"the policy was stopped: the Rego engine failed (exit {returncode}; "
            f"memory limit {mb} MiB){': ' + stderr.strip().splitlines()[-1][:200] if stderr.strip() else ''}")


def _run(request: dict, answers: int) -> tuple[list[dict], str | None]:
    """Run the child with ``request``; read up to ``answers`` lines, each within the time limit.
    Returns (answers read, why it stopped early or None)."""
    timeout = settings.CSM_REGO_TIMEOUT_SECONDS
    request = {**request, "memory_mb": settings.CSM_REGO_MEMORY_MB}
    process = subprocess.Popen(
        [sys.executable, "-m", "policies.rego_child"], cwd=_ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limits(), env={
            "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(_ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    results: list[dict] = []
    stopped = None
    try:
        process.stdin.write(json.dumps(request).encode())
        process.stdin.close()
        watcher = selectors.DefaultSelector()
        watcher.register(process.stdout, selectors.EVENT_READ)
        buffer = b""
        deadline = time.monotonic() + timeout + 2  # the first answer also pays for starting the engine
        while len(results) < answers:
            left = deadline - time.monotonic()
            if left <= 0 or not watcher.select(timeout=left):
                stopped = f"the policy was stopped: it ran longer than {timeout} s"
                break
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                process.wait(timeout=5)
                stopped = _stopped_reason(process.stderr.read().decode(errors="replace"), process.returncode)
                break
            buffer += chunk
            while b"\n" in buffer and len(results) < answers:
                line, buffer = buffer.split(b"\n", 1)
                results.append(json.loads(line))
                deadline = time.monotonic() + timeout
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
        process.wait()
        for stream in (process.stdout, process.stderr):
            stream.close()
    return results, stopped


def check(source: str) -> None:
    """Validate a policy as ``kosli evaluate`` would use it; raise ``RegoSyntaxError`` naming the line.
    The engine compiles rules when it first evaluates them, so the check evaluates ``data.policy``
    against an empty input (bounded like any evaluation): syntax errors and unknown functions are found;
    a policy that runs out of time or memory there is accepted (and stopped the same way at every use)."""
    package = _PACKAGE.search(source)
    if package is None:
        raise RegoSyntaxError("a Rego policy starts with 'package policy'", 1)
    if package.group(1) != "policy":
        raise RegoSyntaxError(f"the policy package must be 'package policy', got 'package {package.group(1)}'",
                              source[:package.start(1)].count("\n") + 1)
    results, stopped = _run({"mode": "check", "source": source}, 1)
    if stopped:
        # It parsed (a syntax error answers at once) and then ran out of time or memory on an empty
        # input: an expensive policy, not an invalid one. Every evaluation of it is bounded the same way.
        results = [{"ok": True}]
    answer = results[0]
    if not answer["ok"]:
        offset = answer.get("offset")
        line = source.encode()[:offset].decode(errors="ignore").count("\n") + 1 if offset is not None else None
        raise RegoSyntaxError(answer["error"], line)
    if not _ALLOW.search(source):
        raise RegoSyntaxError("the policy must declare an 'allow' rule")


def evaluate(source: str, inputs: list, params: dict | None = None) -> list[Decision]:
    """Evaluate ``source`` against each of ``inputs`` (one child process for all). A decision that
    overruns the time or memory limit stops the process: it and the ones not reached yet get the
    reason as ``error`` (the rest are not run: a runaway policy is not retried per input)."""
    if not inputs:
        return []
    limit = settings.CSM_REGO_MAX_INPUT_BYTES
    decisions: list[Decision | None] = [None] * len(inputs)
    runnable = []
    for position, document in enumerate(inputs):
        if len(canonical_json(document).encode()) > limit:
            decisions[position] = Decision(None, [], f"the policy input is larger than {limit} bytes")
        else:
            runnable.append(position)
    if runnable:
        results, stopped = _run({"mode": "evaluate", "source": source, "params": params,
                                 "inputs": [inputs[p] for p in runnable]}, len(runnable))
        for position, answer in zip(runnable, results, strict=False):
            decisions[position] = Decision(answer["allow"], answer["violations"], answer["error"])
        for position in runnable[len(results):]:
            decisions[position] = Decision(None, [], stopped if position == runnable[len(results)] else
                                           f"not evaluated: {stopped} on an earlier input")
    return decisions
