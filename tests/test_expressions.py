"""The safe expression language used by policies and custom attestation types."""

import pytest

from csm.lib.expressions import MAX_DEPTH, ExpressionError, compile_expression, unwrap_template

CONTEXT = {
    "coverage": 85,
    "flaky": False,
    "ratio": 0.5,
    "flow": {"name": "runtime", "tags": {"risk-level": "high", "team": "payments"}},
    "artifact": {"name": "datadog:7.1", "fingerprint": "ab" * 32},
    "items": ["a", "b"],
}


@pytest.mark.parametrize("text, expected", [
    ("coverage >= 80 and not flaky", True),
    ("coverage > 90 or flaky", False),
    ('flow.name == "runtime"', True),
    ("flow.tags.risk-level in ['high', 'critical']", True),
    ('flow.tags["team"] != "search"', True),
    ("exists(flow) and not exists(trail)", True),
    ('matches(artifact.name, "^datadog:")', True),
    ('"b" in items and "c" not in items', True),
    ("ratio < 0.75", True),
    ("not (coverage < 80 or flaky)", True),
    ("missing.deeply.nested == null", True),
    ("items[1] == 'b' and items[5] == null", True),
    ("len(items) == 2", True),
    ("'dog' in artifact.name", True),
])
def test_evaluates(text, expected):
    assert compile_expression(text).test(CONTEXT) is expected


def test_policy_template_unwrapping():
    assert compile_expression(unwrap_template("${{ flow.name == 'runtime' }}")).test(CONTEXT)


@pytest.mark.parametrize("text, fragment", [
    ("coverage >=", "ends too early"),
    ("coverage >= 80 and", "ends too early"),
    ("(coverage > 1", "expected ')'"),
    ("coverage > 1 > 0", "chained comparisons"),
    ("__import__('os')", "names starting with '__' are not allowed"),
    ("system('ls')", "unknown function system()"),
    ("open('/etc/passwd')", "unknown function"),
    ("coverage + 1", "unexpected character '+'"),
    ("flow.__class__", "names starting with '__' are not allowed"),
    ("'unterminated", "unterminated string"),
    ("", "empty"),
    ("a ; b", "unexpected character ';'"),
])
def test_syntax_errors_name_the_problem_and_position(text, fragment):
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert fragment in caught.value.message


def test_no_python_attribute_access_through_paths():
    class Secret:
        token = "s3cret"

    # Paths only read dict keys and list items; objects yield null, never their attributes.
    assert compile_expression("obj.token == null").test({"obj": Secret()})


def test_hostile_nesting_is_refused_not_a_recursion_error():
    with pytest.raises(ExpressionError, match="nests deeper"):
        compile_expression("(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5))
    with pytest.raises(ExpressionError, match="nests deeper"):
        compile_expression("not " * 200 + "true")


def test_hostile_sizes_are_refused():
    with pytest.raises(ExpressionError, match="longer than"):
        compile_expression("'" + "a" * 10_000 + "'")


def test_catastrophic_regex_runs_in_linear_time():
    # RE2 has no backtracking: this classic ReDoS pattern returns instead of hanging.
    expr = compile_expression('matches(name, "^(a+)+$")')
    assert expr.test({"name": "a" * 50_000 + "b"}) is False


def test_type_errors_at_evaluation_are_expression_errors():
    with pytest.raises(ExpressionError, match="cannot compare str with int"):
        compile_expression("flow.name > 3").evaluate(CONTEXT)
    with pytest.raises(ExpressionError, match="invalid pattern"):
        compile_expression('matches(flow.name, "(")').evaluate(CONTEXT)


def test_custom_function_allow_list():
    expr = compile_expression("double(2) == 4", functions={"double": lambda x: x * 2})
    assert expr.test({})
    with pytest.raises(ExpressionError, match="unknown function exists"):
        compile_expression("exists(x)", functions={"double": lambda x: x * 2})
