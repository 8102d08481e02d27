"""scripts/audit_deps.py (CI's pip-audit step) fails on a known vulnerability, only warns when nothing could be
audited, and lets an ignore-file entry pass only with a reason and until its revisit date. Fed pip-audit's
JSON report format: the advisory service itself is not reachable from here (docs/operations.md)."""

import datetime
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def audit_deps():
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails(audit_deps, capsys):
    report = {"dependencies": [
        {"name": "django", "version": "5.2.0", "vulns": [{"id": "PYSEC-2099-1", "fix_versions": ["5.2.1"]}]},
        {"name": "redis", "version": "8.1.0", "vulns": []},
    ]}
    assert audit_deps.verdict("server", report) is False
    err = capsys.readouterr().err
    assert "VULNERABLE django==5.2.0: PYSEC-2099-1 (fixed in 5.2.1)" in err and "pip-audit-ignore.txt" in err


def test_nothing_audited_warns_and_passes(audit_deps, capsys):
    report = {"dependencies": [{"name": "django", "skip_reason": "Dependency not found on PyPI"}]}
    assert audit_deps.verdict("server", report) is True
    assert "WARNING" in capsys.readouterr().out


def test_clean_report_passes_and_says_how_many_were_audited(audit_deps, capsys):
    report = {"dependencies": [{"name": "redis", "version": "8.1.0", "vulns": []},
                               {"name": "odd", "skip_reason": "not on PyPI"}]}
    assert audit_deps.verdict("agent", report) is True
    out = capsys.readouterr().out
    assert "1 dependencies audited, no known vulnerabilities" in out and "not audited: odd" in out


def test_ignore_file_needs_a_reason_and_a_future_revisit_date(audit_deps, tmp_path, monkeypatch):
    ignore = tmp_path / "pip-audit-ignore.txt"
    ignore.write_text("# comment\n"
                      "GHSA-aaaa-bbbb-cccc  2027-01-31  only the CLI uses it, never on input from outside\n"
                      "PYSEC-2026-1  2026-11-30  was waiting for upstream\n"
                      "PYSEC-2026-2  2027-01-31\n"
                      "PYSEC-2026-3  soon  no date\n")
    monkeypatch.setattr(audit_deps, "IGNORE_FILE", ignore)
    ids, problems = audit_deps.ignored_vulns(datetime.date(2026, 12, 4))
    assert ids == ["GHSA-aaaa-bbbb-cccc"]
    assert len(problems) == 3
    assert "PYSEC-2026-1 was to be revisited by 2026-11-30" in problems[0]
    assert "PYSEC-2026-2 has no reason" in problems[1]
    assert "want `ID YYYY-MM-DD reason`" in problems[2]


def test_the_committed_ignore_file_is_valid(audit_deps):
    _ids, problems = audit_deps.ignored_vulns(datetime.date.today())
    assert problems == []
