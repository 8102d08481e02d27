"""JUnit XML as pytest, Maven Surefire, Gradle, Jest and friends write it: ``<testsuites>`` or a single
``<testsuite>``. Counts come from the ``<testcase>`` elements (like the kosli CLI), falling back to the
suite's attributes when a suite lists no test cases."""

from decimal import Decimal, InvalidOperation

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from evidence.parsers import ParseError


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


def _suite(element, name: str) -> dict:
    tests = failures = errors = skipped = 0
    cases = element.findall("testcase")
    for case in cases:
        tests += 1
        if case.find("failure") is not None:
            failures += 1
        elif case.find("error") is not None:
            errors += 1
        elif case.find("skipped") is not None:
            skipped += 1
    if not cases:
        tests, failures = _int(element.get("tests")), _int(element.get("failures"))
        errors, skipped = _int(element.get("errors")), _int(element.get("skipped"))
    return {"name": element.get("name", ""), "file": name, "tests": tests, "failures": failures, "errors": errors,
            "skipped": skipped, "duration_ms": _ms(element.get("time")), "timestamp": element.get("timestamp", "")}


def parse(name: str, data: bytes) -> dict | None:
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
    suites = [_suite(element, name) for element in elements]
    suites = [suite for suite in suites if suite["tests"] or suite["name"]]
    return {"suites": suites}


def totals(suites: list[dict]) -> dict:
    keys = ("tests", "failures", "errors", "skipped")
    return {key: sum(suite[key] for suite in suites) for key in keys}
