"""The limits of kosli's jq rules (``csm/lib/jqrules.py``): a custom attestation type's rules come from any
admin of any org, so a program that loops, allocates, floods output or reaches for the server's environment
or files must be stopped with a clear reason and must never make an attestation compliant."""

import os

import pytest

from csm.lib import jqrules
from csm.lib.jqrules import JqError, check_programs, evaluate_rules, evaluate_values


def reasons(rules, data=None):
    return [(r.passed, r.reason) for r in evaluate_rules(rules, {} if data is None else data)]


def test_every_rule_must_yield_true_and_only_true():
    data = {"age": 30, "name": "Bob", "tests": [{"ok": True}, {"ok": False}]}
    assert reasons([".age > 21", '.name | startswith("B")', "[.tests[].ok] | any"], data) == [
        (True, "is true"), (True, "is true"), (True, "is true")]
    assert reasons([".age < 21", ".age", '"true"', "null", "empty", ".tests[].ok"], data) == [
        (False, "is false"), (False, "yields 30, not a boolean"), (False, 'yields "true", not a boolean'),
        (False, "yields null, not a boolean"), (False, "yields no value"), (False, "is false")]


def test_a_jq_error_is_a_failed_rule_with_jqs_message():
    assert reasons(['error("boom")', ".age + \"x\""], {"age": 1}) == [
        (False, "jq error: boom"), (False, "jq error: number (1) and string (\"x\") cannot be added")]


@pytest.mark.parametrize("program", ["def f: f; f", "[range(1e8)] | length > 0", "last(range(1e18)) > 0"])
def test_a_runaway_program_is_stopped_and_the_rest_not_run(program):
    first, second = evaluate_rules([program, "true"], {})
    # stopped by a time bound or, for the list that grows, by whichever bound it meets first
    assert not first.passed and first.reason.startswith("stopped: ")
    assert (second.passed, second.reason) == (
        False, "not evaluated: jq rule 1 was stopped")


def test_a_program_that_allocates_past_the_memory_limit_is_stopped():
    (result,) = evaluate_rules(['("x" * 400000000 | length) > 0'], {})
    assert not result.passed
    assert result.reason in ("stopped: needed more than the memory limit of 256 MiB",
                             f"stopped: ran longer than the limit of {jqrules.WALL_SECONDS:g} seconds",
                             f"stopped: used more than the limit of {jqrules.CPU_SECONDS} CPU seconds")


def test_endless_output_is_cut_at_the_limit():
    (result,) = evaluate_rules(["repeat(true)"], {})
    assert (result.passed, result.reason) == (False, f"yields more than {jqrules.MAX_OUTPUTS} values")
    assert len(result.values) == jqrules.MAX_OUTPUTS


def test_big_values_are_cut_to_text():
    (value,) = evaluate_values(['"x" * 100000'], {})
    assert set(value["value"]) == {"truncated"} and len(value["value"]["truncated"]) == jqrules.MAX_VALUE_CHARS


def test_the_servers_environment_is_invisible(monkeypatch):
    monkeypatch.setenv("CSM_TEST_SECRET", "s3cret")
    assert os.environ["CSM_TEST_SECRET"] == "s3cret"
    values = evaluate_values(["env | tostring", "$ENV | tostring"], {})
    assert all("s3cret" not in str(v) and "DATABASE_URL" not in str(v) for v in values)


def test_modules_are_refused_because_they_read_files():
    for program in ['import "/etc/passwd" as $p; true', 'include "x"; true', "module {}; true"]:
        with pytest.raises(JqError, match=r"jq modules \(import, include\) are not allowed"):
            check_programs([program])
    # the words inside a string or a comment are data, not a directive
    assert check_programs(['.kind == "import"', ".a # include me"]) == ['.kind == "import"', ".a # include me"]


def test_compile_errors_name_the_rule_and_jq_says_what():
    with pytest.raises(JqError) as error:
        check_programs([".a", ".b | ("])
    assert error.value.index == 1
    assert error.value.message.startswith("jq rule 2 (.b | (): syntax error, unexpected end of file")


def test_text_and_count_are_bounded_like_expressions():
    with pytest.raises(JqError, match="longer than 4096 characters"):
        check_programs(["." + " " * jqrules.MAX_RULE_LENGTH])
    with pytest.raises(JqError, match=f"at most {jqrules.MAX_RULES}"):
        check_programs(["true"] * (jqrules.MAX_RULES + 1))
    with pytest.raises(JqError, match="is empty"):
        check_programs(["  "])
    with pytest.raises(JqError, match="must be a list"):
        check_programs(".a")


def test_data_beyond_the_document_limits_is_not_evaluated():
    deep = current = {}
    for _ in range(100):
        current["a"] = {}
        current = current["a"]
    (result,) = evaluate_rules(["true"], deep)
    assert (result.passed, result.reason) == (False, "not evaluated: attestation data is nested deeper than the "
                                                     "limit of 64 levels")


def test_rules_and_summary_run_together_and_keep_no_floats():
    """Results are hashed into the journal as canonical JSON, which has no floats: a whole number comes back
    as an int, any other as its decimal text."""
    results, values = jqrules.evaluate([".ratio > 0.5", ".ratio"], [".ratio", ".count", ".missing"],
                                       {"ratio": 0.75, "count": 3.0})
    assert [(r.passed, r.reason, r.values) for r in results] == [
        (True, "is true", [True]), (False, "yields 0.75, not a boolean", ["0.75"])]
    assert values == [{"value": "0.75"}, {"value": 3}, {"value": None}]
