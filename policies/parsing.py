"""Environment policy documents (kosli policy v1 YAML): parse, validate, report problems by line.

A policy file looks like::

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
      vulnerabilities:          # csm's own rule (not kosli's): known vulnerabilities of the SBOM
        fail_at: high           # critical | high | medium | low (required)
        grace_period: 7d        # from when csm first matched it (m, h, d, w; optional)
        unknown_severity: fail  # fail (default) | ignore
        without_sbom: unknown   # unknown (default) | fail | ignore
    changes:                    # csm's own: when the artifacts changed
      within_change_windows: true   # an artifact started (or scaled) outside the environment's change
                                    # windows is non-compliant while it runs (snapshots/change_windows.py)

``parse_policy(text)`` returns the normalized document (plain JSON, stored with each version) or
raises ``PolicyError`` whose ``problems`` each carry a 1-based line number, the path of the key and
the problem. The YAML is composed into nodes (which keep their marks) rather than loaded, so every
problem points at a line; anchors and aliases are refused (no "billion laughs").
"""

import functools
import re
from dataclasses import dataclass

import yaml
from django.conf import settings

from csm.lib.expressions import ExpressionError, compile_expression, unwrap_template
from vulns.choices import VulnSeverity

MAX_RULES = 200
BUILTIN_ATTESTATION_TYPES = ("generic", "junit", "snyk", "pull_request", "jira", "sonar")
SCHEMA_EXAMPLE = "https://kosli.com/schemas/policy/environment/v1"

# ``artifacts.vulnerabilities``: the thresholds a rule may name (``unknown`` is not a threshold: it is how
# an advisory without a severity is treated, see ``unknown_severity``).
FAIL_AT_LEVELS = (VulnSeverity.CRITICAL.value, VulnSeverity.HIGH.value, VulnSeverity.MEDIUM.value,
                  VulnSeverity.LOW.value)
UNKNOWN_SEVERITY_CHOICES = ("fail", "ignore")
WITHOUT_SBOM_CHOICES = ("unknown", "fail", "ignore")
GRACE_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_GRACE_SECONDS = 366 * 86400
_GRACE = re.compile(r"^(\d{1,6})([mhdw])$")


@dataclass(frozen=True)
class Problem:
    line: int | None
    path: str
    message: str

    def __str__(self):
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class PolicyError(ValueError):
    """An invalid policy file; ``problems`` lists every problem found, first one first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(str(problems[0]) if problems else "invalid policy")


@functools.lru_cache(maxsize=2048)
def compile_condition(text: str):
    """A ``${{ expr }}`` (or bare ``expr``) condition → compiled Expression (ExpressionError if bad)."""
    return compile_expression(unwrap_template(text).strip())


def _line(node) -> int:
    return node.start_mark.line + 1


class _Validator:
    def __init__(self):
        self.problems: list[Problem] = []

    def problem(self, node, path, message):
        self.problems.append(Problem(_line(node) if node is not None else None, path, message))

    def mapping(self, node, path, allowed: tuple[str, ...]) -> dict:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, "must be a mapping")
            return {}
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            key_path = f"{path}.{key}" if path else str(key)
            if key not in allowed:
                expected = ", ".join(allowed)
                self.problem(key_node, key_path, f"unknown key (expected one of: {expected})")
            elif key in out:
                self.problem(key_node, key_path, "duplicate key")
            else:
                out[key] = value_node
        return out

    def string(self, node, path) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            self.problem(node, path, "must be a string")
            return None
        return node.value

    def boolean(self, node, path) -> bool:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
            self.problem(node, path, "must be true or false")
            return False
        return node.value.lower() in ("true", "yes", "on", "y")

    def condition(self, node, path) -> str | None:
        text = self.string(node, path)
        if text is None:
            return None
        try:
            compile_condition(text)
        except ExpressionError as error:
            self.problem(node, path, f"invalid expression: {error}")
            return None
        return text.strip()

    def sequence(self, node, path) -> list:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, "must be a list")
            return []
        if len(node.value) > MAX_RULES:
            self.problem(node, path, f"at most {MAX_RULES} items")
            return []
        return node.value

    def boolean_rule(self, node, path) -> dict:
        fields = self.mapping(node, path, ("required", "exceptions"))
        rule = {"required": False, "exceptions": []}
        if "required" in fields:
            rule["required"] = self.boolean(fields["required"], f"{path}.required")
        if "exceptions" in fields:
            rule["exceptions"] = self.exceptions(fields["exceptions"], f"{path}.exceptions")
        return rule

    def exceptions(self, node, path) -> list[str]:
        """``exceptions: [{if: ${{ ... }}}]`` → the conditions."""
        conditions = []
        for index, item in enumerate(self.sequence(node, path)):
            item_path = f"{path}[{index}]"
            exception = self.mapping(item, item_path, ("if",))
            if "if" not in exception:
                if isinstance(item, yaml.MappingNode):
                    self.problem(item, item_path, "an exception needs an 'if' condition")
                continue
            condition = self.condition(exception["if"], f"{item_path}.if")
            if condition is not None:
                conditions.append(condition)
        return conditions

    def choice(self, node, path, choices: tuple[str, ...]) -> str | None:
        value = self.string(node, path)
        if value is None:
            return None
        if value not in choices:
            self.problem(node, path, f"must be one of: {', '.join(choices)} (got {value!r})")
            return None
        return value

    def grace_period(self, node, path) -> int | None:
        """``30m``, ``12h``, ``7d``, ``2w`` → seconds (at most 366 days)."""
        text = node.value.strip() if isinstance(node, yaml.ScalarNode) else ""
        match = _GRACE.match(text)
        if match is None:
            self.problem(node, path, "must be a duration such as 12h, 7d or 2w (a whole number and m, h, d or w)")
            return None
        seconds = int(match.group(1)) * GRACE_UNITS[match.group(2)]
        if seconds > MAX_GRACE_SECONDS:
            self.problem(node, path, "must be at most 366d")
            return None
        return seconds

    def vulnerability_rule(self, node, path) -> dict | None:
        """``artifacts.vulnerabilities``: fail artifacts with a known vulnerability at or above ``fail_at``."""
        keys = ("fail_at", "grace_period", "unknown_severity", "without_sbom", "exceptions")
        fields = self.mapping(node, path, keys)
        if not isinstance(node, yaml.MappingNode):
            return None
        if "fail_at" not in fields:
            self.problem(node, f"{path}.fail_at", f"is required (one of: {', '.join(FAIL_AT_LEVELS)})")
            return None
        rule = {"fail_at": self.choice(fields["fail_at"], f"{path}.fail_at", FAIL_AT_LEVELS),
                "grace_period": None, "grace_seconds": 0, "unknown_severity": "fail", "without_sbom": "unknown",
                "exceptions": []}
        if "grace_period" in fields:
            seconds = self.grace_period(fields["grace_period"], f"{path}.grace_period")
            if seconds is not None:
                rule["grace_period"] = fields["grace_period"].value.strip()
                rule["grace_seconds"] = seconds
        if "unknown_severity" in fields:
            rule["unknown_severity"] = self.choice(fields["unknown_severity"], f"{path}.unknown_severity",
                                                   UNKNOWN_SEVERITY_CHOICES)
        if "without_sbom" in fields:
            rule["without_sbom"] = self.choice(fields["without_sbom"], f"{path}.without_sbom", WITHOUT_SBOM_CHOICES)
        if "exceptions" in fields:
            rule["exceptions"] = self.exceptions(fields["exceptions"], f"{path}.exceptions")
        return rule

    def attestation_type(self, node, path) -> str | None:
        value = self.string(node, path)
        if value is None:
            return None
        if value in BUILTIN_ATTESTATION_TYPES or value == "*":
            return value
        if value.startswith("custom:") and len(value) > len("custom:"):
            return value
        builtins = ", ".join(BUILTIN_ATTESTATION_TYPES)
        self.problem(node, path, f"unknown attestation type {value!r} (use one of {builtins}, custom:<name> or *)")
        return None

    def attestation_rule(self, node, path) -> dict | None:
        fields = self.mapping(node, path, ("name", "type", "if"))
        if not isinstance(node, yaml.MappingNode):
            return None
        if "type" not in fields:
            self.problem(node, path, "an attestation rule needs a 'type'")
            return None
        rule_type = self.attestation_type(fields["type"], f"{path}.type")
        name = self.string(fields["name"], f"{path}.name") if "name" in fields else "*"
        condition = self.condition(fields["if"], f"{path}.if") if "if" in fields else None
        if rule_type is None or name is None or ("if" in fields and condition is None):
            return None
        if not name.strip():
            self.problem(fields["name"], f"{path}.name", "must not be empty")
            return None
        if name == "*" and rule_type == "*":
            self.problem(node, path, "'name' and 'type' cannot both be '*'")
            return None
        return {"name": name, "type": rule_type, "if": condition}

    def changes_rule(self, node, path) -> dict | None:
        """``changes``: ``within_change_windows: true`` (and ``exceptions``)."""
        fields = self.mapping(node, path, ("within_change_windows", "exceptions"))
        if not isinstance(node, yaml.MappingNode):
            return None
        rule = {"within_change_windows": False, "exceptions": []}
        if "within_change_windows" in fields:
            rule["within_change_windows"] = self.boolean(fields["within_change_windows"],
                                                         f"{path}.within_change_windows")
        if "exceptions" in fields:
            rule["exceptions"] = self.exceptions(fields["exceptions"], f"{path}.exceptions")
        return rule if rule["within_change_windows"] else None

    def document(self, root) -> dict:
        fields = self.mapping(root, "", ("_schema", "artifacts", "changes"))
        if not isinstance(root, yaml.MappingNode):
            return {}
        if "_schema" not in fields:
            self.problem(root, "_schema", f"is required (e.g. _schema: {SCHEMA_EXAMPLE})")
        else:
            schema = self.string(fields["_schema"], "_schema")
            if schema is not None and schema.rstrip("/").rsplit("/", 1)[-1] != "v1":
                self.problem(fields["_schema"], "_schema", "unsupported schema version: the URL must end in /v1")
        doc = {
            "schema": "v1",
            "provenance": {"required": False, "exceptions": []},
            "trail_compliance": {"required": False, "exceptions": []},
            "attestations": [],
        }
        if "artifacts" in fields:
            keys = ("provenance", "trail-compliance", "attestations", "vulnerabilities")
            artifacts = self.mapping(fields["artifacts"], "artifacts", keys)
            if "provenance" in artifacts:
                doc["provenance"] = self.boolean_rule(artifacts["provenance"], "artifacts.provenance")
            if "trail-compliance" in artifacts:
                doc["trail_compliance"] = self.boolean_rule(artifacts["trail-compliance"], "artifacts.trail-compliance")
            if "attestations" in artifacts:
                for index, item in enumerate(self.sequence(artifacts["attestations"], "artifacts.attestations")):
                    rule = self.attestation_rule(item, f"artifacts.attestations[{index}]")
                    if rule is not None:
                        doc["attestations"].append(rule)
            if "vulnerabilities" in artifacts:
                rule = self.vulnerability_rule(artifacts["vulnerabilities"], "artifacts.vulnerabilities")
                if rule is not None:
                    doc["vulnerabilities"] = rule
        if "changes" in fields:
            rule = self.changes_rule(fields["changes"], "changes")
            if rule is not None:
                doc["changes"] = rule
        return doc


MAX_DEPTH = 20


def _refuse_hostile_structure(text: str) -> None:
    """Walk the YAML events (iteratively) before building nodes: no anchors/aliases ("billion laughs"),
    no nesting deeper than any policy needs (the node composer recurses)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise PolicyError([Problem(event.start_mark.line + 1, "", "YAML anchors and aliases are not allowed")])
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise PolicyError([Problem(event.start_mark.line + 1, "", f"nested deeper than {MAX_DEPTH} levels")])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def parse_policy(text: str | bytes) -> dict:
    """Validate a policy file and return its normalized document; raise PolicyError otherwise."""
    max_bytes = settings.CSM_POLICY_MAX_BYTES
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise PolicyError([Problem(None, "", f"the policy file is larger than {max_bytes} bytes")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError([Problem(None, "", "the policy file is not UTF-8 text")]) from None
    if len(text.encode()) > max_bytes:
        raise PolicyError([Problem(None, "", f"the policy file is larger than {max_bytes} bytes")])
    if not text.strip():
        raise PolicyError([Problem(1, "", "the policy file is empty")])
    try:
        _refuse_hostile_structure(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        raise PolicyError([Problem(line, "", f"not valid YAML: {error.problem or error.context}")]) from None
    except yaml.YAMLError as error:
        raise PolicyError([Problem(None, "", f"not valid YAML: {error}")]) from None
    if root is None:
        raise PolicyError([Problem(1, "", "the policy file is empty")])
    validator = _Validator()
    doc = validator.document(root)
    if validator.problems:
        raise PolicyError(validator.problems)
    return doc
