"""Policy files: the kosli v1 schema, and every kind of invalid file named by line and key."""

import json

import pytest

from policies.parsing import PolicyError, parse_policy

VALID = """\
_schema: https://kosli.com/schemas/policy/environment/v1
artifacts:
  provenance:
    required: true
    exceptions:
      - if: ${{ matches(artifact.name, "^datadog:.*") }}
  trail-compliance:
    required: true
  attestations:
    - name: security-scan
      type: snyk
    - name: pull-request
      type: pull_request
      if: ${{ flow.tags.risk-level == "high" }}
    - name: coverage
      type: custom:coverage-metrics
    - type: junit
"""


def problems(text):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    return [str(p) for p in caught.value.problems]


def test_valid_policy_is_normalized():
    doc = parse_policy(VALID)
    assert doc["provenance"] == {"required": True, "exceptions": ['${{ matches(artifact.name, "^datadog:.*") }}']}
    assert doc["trail_compliance"] == {"required": True, "exceptions": []}
    assert doc["attestations"][0] == {"name": "security-scan", "type": "snyk", "if": None}
    assert doc["attestations"][1]["if"] == '${{ flow.tags.risk-level == "high" }}'
    assert doc["attestations"][2]["type"] == "custom:coverage-metrics"
    assert doc["attestations"][3] == {"name": "*", "type": "junit", "if": None}


def test_minimal_policy_uses_defaults():
    doc = parse_policy("_schema: https://kosli.com/schemas/policy/environment/v1\n")
    assert doc["provenance"]["required"] is False
    assert doc["attestations"] == []


@pytest.mark.parametrize("text, expected", [
    ("artifacts: {}\n", "line 1: _schema: is required"),
    ("_schema: https://x/policy/v2\n", "line 1: _schema: unsupported schema version"),
    ("_schema: x/v1\nartifact: {}\n", "line 2: artifact: unknown key"),
    ("_schema: x/v1\nartifacts:\n  provenance:\n    required: maybe\n",
     "line 4: artifacts.provenance.required: must be true or false"),
    ("_schema: x/v1\nartifacts:\n  provenance:\n    exceptions:\n      - when: x\n",
     "line 5: artifacts.provenance.exceptions[0].when: unknown key"),
    ("_schema: x/v1\nartifacts:\n  trail-compliance:\n    exceptions:\n      - if: ${{ flow.name == }}\n",
     "line 5: artifacts.trail-compliance.exceptions[0].if: invalid expression"),
    ("_schema: x/v1\nartifacts:\n  attestations:\n    - name: a\n      type: bogus\n",
     "line 5: artifacts.attestations[0].type: unknown attestation type 'bogus'"),
    ("_schema: x/v1\nartifacts:\n  attestations:\n    - name: a\n",
     "line 4: artifacts.attestations[0]: an attestation rule needs a 'type'"),
    ("_schema: x/v1\nartifacts:\n  attestations:\n    - name: '*'\n      type: '*'\n",
     "line 4: artifacts.attestations[0]: 'name' and 'type' cannot both be '*'"),
    ("_schema: x/v1\nartifacts:\n  attestations: nope\n", "line 3: artifacts.attestations: must be a list"),
    ("_schema: x/v1\n_schema: x/v1\n", "line 2: _schema: duplicate key"),
    ("_schema: [x\n", "not valid YAML"),
    ("- just\n- a list\n", "line 1: must be a mapping"),
    ("", "the policy file is empty"),
    ("a: &anchor [1]\nb: *anchor\n", "anchors and aliases are not allowed"),
    ("_schema: x/v1\nartifacts:\n  attestations:\n    - name: a\n      type: junit\n      if: ${{ __class__ }}\n",
     "line 6: artifacts.attestations[0].if: invalid expression"),
])
def test_invalid_policies_name_line_and_problem(text, expected):
    assert any(expected in problem for problem in problems(text)), problems(text)


def test_every_problem_is_reported():
    found = problems("_schema: x/v1\nartifacts:\n  provenance:\n    required: 1\n  attestations:\n    - type: x\n")
    assert len(found) == 2


def test_oversized_and_binary_files_are_refused(settings):
    settings.CSM_POLICY_MAX_BYTES = 1024
    assert "larger than 1024 bytes" in problems("_schema: x/v1\n" + "# pad\n" * 400)[0]
    assert "not UTF-8" in problems(b"\xff\xfe_schema")[0]


@pytest.mark.parametrize("condition, problem", [
    ("(" * 200 + "flow.name" + ")" * 200, "invalid expression"),
    ('flow.name == "' + "x" * 100_000 + '"', "invalid expression"),
    ("artifact.__class__", "invalid expression"),
    ("flow.tags.__dict__ == 1", "invalid expression"),
    ("__import__('os').system('id')", "invalid expression"),
    ("open('/etc/passwd')", "invalid expression"),
    ("flow.name == ", "invalid expression"),
])
def test_hostile_expressions_are_refused_with_their_line(condition, problem, settings):
    settings.CSM_POLICY_MAX_BYTES = 1024 * 1024
    text = ("_schema: x/v1\nartifacts:\n  provenance:\n    required: true\n    exceptions:\n"
            f"      - if: {json.dumps('${{ ' + condition + ' }}')}\n")
    found = problems(text)
    assert found[0].startswith("line 6: artifacts.provenance.exceptions[0].if: " + problem), found


def test_deeply_nested_yaml_is_refused_cleanly():
    assert "nested deeper than 20 levels" in problems("_schema: x/v1\nartifacts: " + "[" * 5000 + "]" * 5000 + "\n")[0]
