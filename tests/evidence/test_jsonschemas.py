"""``csm/lib/jsonschemas.py`` on its own: the JSON Schema semantics custom types rely on survive the
bounded, non-fetching validator (RE2 patterns, linear ``uniqueItems``, ``additionalProperties`` with
``patternProperties``), and the schema shapes it cannot bound are refused up front, naming why."""

import pytest

from csm.lib import jsonschemas


def _message(schema, document):
    error = jsonschemas.first_error(schema, document)
    return error.message if error is not None else None


def test_patterns_keep_json_schema_search_semantics_on_re2():
    schema = {"type": "object", "properties": {"ticket": {"pattern": "[A-Z]+-[0-9]+"}},
              "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}
    assert _message(schema, {"ticket": "see OPS-12 now", "x-count": 3}) is None  # unanchored, like ECMA
    assert "does not match" in _message(schema, {"ticket": "none"})
    assert "is not of type 'integer'" in _message(schema, {"x-count": "3"})
    assert "Additional properties are not allowed ('other' unexpected)" == _message(schema, {"other": 1})
    # a pattern Python's backtracking engine takes exponential time on is linear here
    assert "does not match" in _message({"pattern": "^(a+)+$"}, "a" * 5000 + "!")


def test_unique_items_follows_json_equality():
    schema = {"uniqueItems": True}
    assert _message(schema, [1, True, "1", {"a": [1]}, {"a": [2]}]) is None
    assert "duplicate" in _message(schema, [{"a": 1, "b": [1.0]}, {"b": [1], "a": 1.0}])
    assert _message(schema, list(range(20_000))) is None


@pytest.mark.parametrize("schema,problem", [
    ({"$schema": "https://example.com/my-dialect"}, "is not a standard JSON Schema dialect"),
    ({"properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#"}}}, "only at the top"),
    ({"patternProperties": {"^a": {}}, "unevaluatedProperties": False}, "may not combine"),
    ({"pattern": "(a)\\1"}, "is not a regular expression csm can run"),
    ({"pattern": "a" * (jsonschemas.MAX_PATTERN_LENGTH + 1)}, "longer than the limit"),
    ({"$id": "https://schemas.example.com/x", "$ref": "y"}, "'y' does not resolve inside the schema"),
    ({"$dynamicRef": "https://example.com/s#meta"}, "$dynamicRef 'https://example.com/s#meta' does not resolve"),
    ({"type": "strnig"}, "is not valid JSON Schema"),
])
def test_shapes_that_cannot_be_bounded_or_resolved_are_refused(schema, problem):
    with pytest.raises(jsonschemas.SchemaRejected) as refused:
        jsonschemas.check_schema(schema)
    assert problem in refused.value.message


def test_standard_metaschema_refs_and_embedded_ids_resolve_without_fetching():
    jsonschemas.check_schema({"$ref": "https://json-schema.org/draft/2020-12/schema"})
    embedded = {"$defs": {"pct": {"$id": "https://schemas.example.com/pct", "type": "number", "maximum": 100}},
                "properties": {"p": {"$ref": "https://schemas.example.com/pct"}}}
    jsonschemas.check_schema(embedded)
    assert _message(embedded, {"p": 100}) is None
    assert "is greater than the maximum of 100" in _message(embedded, {"p": 101})


def test_document_limits_name_the_limit():
    deep = "x"
    for _ in range(jsonschemas.MAX_DOCUMENT_DEPTH + 1):
        deep = [deep]
    with pytest.raises(jsonschemas.SchemaRejected, match="nested deeper than the limit of 64 levels") as refused:
        jsonschemas.first_error({}, deep, "attestation_data")
    assert refused.value.subject == "document"
    with pytest.raises(jsonschemas.SchemaRejected) as refused:
        jsonschemas.first_error({}, ["x" * 1000] * 1100, "attestation_data")
    assert refused.value.code == "too_large" and "attestation_data is larger than the limit" in refused.value.message
