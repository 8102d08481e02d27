"""The child process that runs Rego (``python -m policies.rego_child``): started by ``policies.rego``
with an address-space and CPU limit, killed by it when a decision overruns its time. It never
imports Django: it reads one JSON request on stdin and writes one JSON line per answer on stdout,
flushing each, so the parent knows which decision was running when it had to stop the process.

Request: ``{"mode": "check" | "evaluate", "source": str, "params": obj | null, "inputs": [obj]}``.

- ``check``: one line ``{"ok": true}`` or ``{"ok": false, "error": str, "offset": int | null}``
  (a syntax error fails the parse at once; other compile errors show when ``data.policy`` is
  evaluated against an empty input).
- ``evaluate``: per input, ``{"allow": bool | null, "violations": [str], "error": str | null}`` —
  the rules ``data.policy.allow`` and ``data.policy.violations``, as ``kosli evaluate`` queries them
  (``internal/evaluate/rego.go`` ``Evaluate``: violations are read only when allow is false, and only
  their strings kept).

The rego-cpp engine aborts the whole process on some internal errors (``std::out_of_range``) and on
memory exhaustion (``std::bad_alloc``): that is why it runs here and not in the worker.
"""

import json
import os
import re
import sys

# "(error 6:policy|30|2" in rego-cpp's error sequence: the module name, then offset|length in the source.
_OFFSET = re.compile(r"policy\|(\d+)\|(\d+)")
_MESSAGE = re.compile(r"\(errormsg \d+:([^)\n]*)")


def _interpreter(source: str, params):
    import regopy

    rego = regopy.Interpreter()
    rego.add_module("policy", source)
    if params is not None:
        rego.add_data({"params": params})
    return rego


class _QueryError(Exception):
    pass


def _binding(rego, query: str):
    """``x := <query>`` → (defined, value). A plain query of a false rule answers "undefined", and
    regopy's ``Output`` fails on an error answer (``(error (errormsg ...))``, not JSON): the raw
    answer is read instead."""
    from regopy.interpreter import rego_query
    from regopy.output import rego_free_output, rego_output_string

    impl = rego_query(rego._impl, f"x := {query}")
    try:
        text = rego_output_string(impl)
    finally:
        rego_free_output(impl)
    if text.strip() == "undefined":
        return False, None
    if text.lstrip().startswith("(error"):
        raise _QueryError(text)
    answer = json.loads(text)
    if isinstance(answer, dict) and "bindings" in answer:
        return True, answer["bindings"].get("x")
    return False, None


def _error(exc) -> tuple[str, int | None]:
    text = str(exc)
    message = _MESSAGE.search(text)
    offset = _OFFSET.search(text)
    return (message.group(1).strip() if message else text.strip().splitlines()[0][:500],
            int(offset.group(1)) if offset else None)


def _check(source: str) -> dict:
    try:
        rego = _interpreter(source, None)
        rego.set_input({})
        _binding(rego, "data.policy")
    except Exception as exc:  # RegoError: a syntax or compile error, with its place in the source
        message, offset = _error(exc)
        return {"ok": False, "error": message, "offset": offset}
    return {"ok": True}


def _evaluate(rego, document) -> dict:
    try:
        rego.set_input(document)
        defined, allow = _binding(rego, "data.policy.allow")
        if not defined:
            return {"allow": None, "violations": [],
                    "error": "the policy did not return a result for 'data.policy.allow'"}
        if not isinstance(allow, bool):
            return {"allow": None, "violations": [],
                    "error": f"the policy's 'allow' rule must be true or false, got {json.dumps(allow)[:100]}"}
        violations = []
        if not allow:
            defined, found = _binding(rego, "data.policy.violations")
            if defined and isinstance(found, list):
                violations = [item for item in found if isinstance(item, str)]
        return {"allow": allow, "violations": sorted(violations), "error": None}
    except Exception as exc:  # a runtime error of the policy on this input
        message, _ = _error(exc)
        return {"allow": None, "violations": [], "error": f"policy evaluation failed: {message}"}


def _limit_memory(megabytes: int) -> None:
    """Cap the address space at what the started engine uses plus ``megabytes``. Set here, after the
    engine's allocator reserved its arenas (it refuses to start under a low limit set before)."""
    import resource

    import regopy

    regopy.Interpreter()
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = used + megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    request = json.loads(sys.stdin.read())
    if request.get("memory_mb"):
        _limit_memory(int(request["memory_mb"]))
    # The engine prints its diagnostics on stdout: answers go to the original stdout, the engine's
    # chatter to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if request["mode"] == "check":
        out.write(json.dumps(_check(request["source"])) + "\n")
        out.flush()
        return 0
    rego = _interpreter(request["source"], request.get("params"))
    for document in request["inputs"]:
        out.write(json.dumps(_evaluate(rego, document)) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
