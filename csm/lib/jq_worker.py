"""The child process that runs jq programs for ``csm.lib.jqrules`` (never imported by csm itself).

It is started as ``python -I jq_worker.py`` with an empty environment (so jq's ``env`` / ``$ENV`` see
nothing of the server's), bounds itself with ``resource`` limits before it reads the untrusted program
(address space, CPU seconds, no files written, no processes started), reads one JSON request on stdin
and writes one JSON answer on stdout. The parent kills it when its wall-clock time runs out, so a
program that loops in jq's C code is stopped too. Only the standard library and ``jq`` are imported.

Request: ``{"mode": "compile" | "run", "programs": [text, ...], "data": value, "max_outputs": n,
"max_value_chars": n, "memory_bytes": n, "cpu_seconds": n}``.
Answer: one line of JSON per program, written as soon as that program is done (so when jq aborts
the process, out of memory, the parent knows which program it was): ``{"error": message}`` or, for
"run", ``{"values": [value, ...], "more": bool}`` (the values a program yielded, at most
``max_outputs``; long values are cut to text).
"""

import json
import resource
import sys


def _limit(request: dict) -> None:
    memory = int(request.get("memory_bytes") or 256 * 1024 * 1024)
    cpu = int(request.get("cpu_seconds") or 2)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _cut(value, max_chars: int):
    text = json.dumps(value, separators=(",", ":"))
    if len(text) <= max_chars:
        return value
    return {"truncated": text[:max_chars]}


def _text(message: str, request: dict) -> str:
    max_chars = int(request.get("max_value_chars") or 1000)
    return message if len(message) <= max_chars else message[:max_chars] + "…"


def _run(jq, program: str, request: dict) -> dict:
    try:
        compiled = jq.compile(program)
    except ValueError as error:
        return {"error": _text(str(error), request)}
    if request["mode"] == "compile":
        return {}
    max_outputs = int(request.get("max_outputs") or 10)
    max_chars = int(request.get("max_value_chars") or 1000)
    values = []
    try:
        for value in compiled.input_value(request.get("data")):
            if len(values) == max_outputs:
                return {"values": values, "more": True}
            values.append(_cut(value, max_chars))
    except ValueError as error:
        return {"error": _text(str(error), request), "values": values}
    return {"values": values, "more": False}


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    _limit(request)
    import jq  # after the limits: nothing of the program runs before they hold

    for program in request["programs"]:
        try:
            answer = _run(jq, program, request)
        except MemoryError:
            answer = {"error": "the program needs more memory than the limit"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
