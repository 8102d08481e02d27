"""JUnit XML as pytest, Maven Surefire, Gradle, Jest and friends write it: ``<testsuites>`` or a single
``<testsuite>``. Counts come from the ``<testcase>`` elements (like the kosli CLI), falling back to the
suite's attributes when a suite lists no test cases.

Per-test details are kept for the attestation page, bounded: at most ``MAX_CASES`` failing/erroring
cases and ``MAX_CASES`` skipped ones per attestation, each failure text cut at ``MAX_TEXT_BYTES`` bytes
of UTF-8 (``text_truncated`` says so) and each message at ``MAX_MESSAGE_CHARS`` characters. The counts of
what was not kept travel with the lists so the page can say what it does not show."""

from decimal import Decimal, InvalidOperation

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from evidence.parsers import ParseError

MAX_CASES = 1000
MAX_TEXT_BYTES = 4096
MAX_MESSAGE_CHARS = 1000


def _int(value) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _ms(value) -> int:
    try:
        return int(Decimal(str(value or "0")) * 1000)
    except (InvalidOperation, ValueError):
        return 0


def clip_bytes(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` bytes of UTF-8 (never inside a character), and whether it was cut."""
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode("utf-8", errors="ignore"), True


def _case(case, outcome, suite_name: str, file_name: str, kind: str) -> dict:
    text, truncated = clip_bytes((outcome.text or "").strip("\n"), MAX_TEXT_BYTES)
    return {"kind": kind, "suite": suite_name[:500], "classname": (case.get("classname") or "")[:500],
            "name": (case.get("name") or "")[:500], "source_file": (case.get("file") or "")[:500],
            "line": (case.get("line") or "")[:20], "evidence_file": file_name[:500],
            "type": (outcome.get("type") or "")[:200], "message": (outcome.get("message") or "")[:MAX_MESSAGE_CHARS],
            "text": text, "text_truncated": truncated, "duration_ms": _ms(case.get("time"))}


def _suite(element, name: str, details: dict) -> dict:
    tests = failures = errors = skipped = 0
    cases = element.findall("testcase")
    suite_name = element.get("name", "")
    for case in cases:
        tests += 1
        failure, error, skip = case.find("failure"), case.find("error"), case.find("skipped")
        if failure is not None or error is not None:
            if failure is not None:
                failures += 1
            else:
                errors += 1
            details["failed_seen"] += 1
            if len(details["failed"]) < MAX_CASES:
                kind, outcome = ("failure", failure) if failure is not None else ("error", error)
                details["failed"].append(_case(case, outcome, suite_name, name, kind))
        elif skip is not None:
            skipped += 1
            details["skipped_seen"] += 1
            if len(details["skipped"]) < MAX_CASES:
                details["skipped"].append({"suite": suite_name[:500], "classname": (case.get("classname") or "")[:500],
                                           "name": (case.get("name") or "")[:500],
                                           "message": (skip.get("message") or "")[:MAX_MESSAGE_CHARS]})
    if not cases:
        tests, failures = _int(element.get("tests")), _int(element.get("failures"))
        errors, skipped = _int(element.get("errors")), _int(element.get("skipped"))
    return {"name": suite_name, "file": name, "tests": tests, "failures": failures, "errors": errors,
            "skipped": skipped, "duration_ms": _ms(element.get("time")), "timestamp": element.get("timestamp", "")}


def parse(name: str, data: bytes) -> dict | None:
    """``{"suites": [...], "failed": [...], "failed_seen": n, "skipped": [...], "skipped_seen": n}`` or None
    when the file is not JUnit XML. ``*_seen`` count every case of that outcome, listed or not."""
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise ParseError(f"{name}: forbidden XML construct ({type(exc).__name__})") from None
    except SafeET.ParseError as exc:
        raise ParseError(f"{name}: malformed XML: {exc}") from None
    if root.tag == "testsuite":
        elements = [root]
    elif root.tag == "testsuites":
        elements = list(root.iter("testsuite"))
    else:
        return None
    details = {"failed": [], "failed_seen": 0, "skipped": [], "skipped_seen": 0}
    suites = [_suite(element, name, details) for element in elements]
    suites = [suite for suite in suites if suite["tests"] or suite["name"]]
    return {"suites": suites, **details}


def totals(suites: list[dict]) -> dict:
    keys = ("tests", "failures", "errors", "skipped")
    return {key: sum(suite[key] for suite in suites) for key in keys}


def case_details(parsed_files: list[dict]) -> dict:
    """The bounded per-test details of an attestation made of ``parsed_files`` (``parse`` results):
    ``{"failed_cases", "failed_cases_omitted", "skipped_cases", "skipped_cases_omitted", "case_limits"}``."""
    failed = [case for parsed in parsed_files for case in parsed["failed"]]
    skipped = [case for parsed in parsed_files for case in parsed["skipped"]]
    failed_seen = sum(parsed["failed_seen"] for parsed in parsed_files)
    skipped_seen = sum(parsed["skipped_seen"] for parsed in parsed_files)
    return {"failed_cases": failed[:MAX_CASES], "failed_cases_omitted": failed_seen - len(failed[:MAX_CASES]),
            "skipped_cases": skipped[:MAX_CASES], "skipped_cases_omitted": skipped_seen - len(skipped[:MAX_CASES]),
            "case_limits": {"cases": MAX_CASES, "text_bytes": MAX_TEXT_BYTES}}
