"""Known-vulnerability check of csm's Python dependencies with pip-audit (scripts/test runs it before pytest).

Audits requirements.txt (the server, with its transitive dependencies) and the agent's own dependencies
(agent/pyproject.toml) against the advisory data pip-audit can reach (the PyPI JSON API by default).

- A known vulnerability fails the run, unless its id is listed in pip-audit-ignore.txt with a reason and
  a date to revisit; a listed entry whose date has passed fails too, so an exception cannot be forgotten.
- When the advisory service is unreachable (offline CI) or has no data for any dependency, the check
  prints a WARNING and passes: it cannot know, and an offline build must still be able to test. A
  dependency it could not look up while others were audited is listed as a warning as well.

Usage: .venv/bin/python scripts/audit_deps.py      (pip-audit from the same virtualenv)
"""

import datetime
import json
import re
import subprocess  # noqa: S404 - runs pip-audit with a fixed argv  # nosec B404
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / "pip-audit-ignore.txt"
TARGETS = [("server (requirements.txt)", ["-r", str(ROOT / "requirements.txt")]),
           ("agent (agent/pyproject.toml)", [str(ROOT / "agent")])]
UNREACHABLE = re.compile(r"ConnectionError|Max retries|Name or service not known|Temporary failure in name resolution|"
                         r"timed out|ServiceError|Network is unreachable|Connection refused", re.IGNORECASE)


def ignored_vulns(today: datetime.date) -> tuple[list[str], list[str]]:
    """(ids to ignore, problems): each line `ID  YYYY-MM-DD  reason`; # starts a comment."""
    ids, problems = [], []
    if not IGNORE_FILE.exists():
        return ids, problems
    for number, raw in enumerate(IGNORE_FILE.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        try:
            revisit = datetime.date.fromisoformat(parts[1])
        except (IndexError, ValueError):
            problems.append(f"{IGNORE_FILE.name}:{number}: want `ID YYYY-MM-DD reason`, got {raw!r}")
            continue
        if len(parts) < 3:
            problems.append(f"{IGNORE_FILE.name}:{number}: {parts[0]} has no reason")
        elif revisit < today:
            problems.append(f"{IGNORE_FILE.name}:{number}: {parts[0]} was to be revisited by {revisit}")
        else:
            ids.append(parts[0])
    return ids, problems


def audit(label: str, target: list[str], ignore: list[str]) -> bool:
    """Audits one target; False when it must fail the run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.json"
        argv = [sys.executable, "-m", "pip_audit", *target, "--format", "json", "--output", str(out),
                "--progress-spinner", "off", *[arg for vuln in ignore for arg in ("--ignore-vuln", vuln)]]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900)  # noqa: S603  # nosec B603
        report = json.loads(out.read_text()) if out.exists() and out.stat().st_size else None
    if report is None:
        if UNREACHABLE.search(result.stderr):
            print(f"WARNING: pip-audit {label}: the advisory service is unreachable; NOT audited.\n"
                  f"  {result.stderr.strip().splitlines()[-1]}")
            return True
        print(f"pip-audit {label} failed (exit {result.returncode}):\n{result.stderr}", file=sys.stderr)
        return False
    return verdict(label, report)


def verdict(label: str, report: dict) -> bool:
    """Reads pip-audit's JSON report: False (fail) on any vulnerability it lists; warnings when it could
    audit nothing or only some of the dependencies."""
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE {dep['name']}=={dep['version']}: {vuln['id']} (fixed in {fixed})", file=sys.stderr)
    if vulnerable:
        print(f"pip-audit {label}: bump the pins above, or list the id in {IGNORE_FILE.name} with a reason "
              "and a date to revisit", file=sys.stderr)
        return False
    audited = len(dependencies) - len(skipped)
    if dependencies and not audited:
        print(f"WARNING: pip-audit {label}: the advisory service had data for none of the {len(dependencies)} "
              f"dependencies (offline or a mirror without advisories); NOT audited. First: "
              f"{skipped[0]['skip_reason']}")
    elif skipped:
        print(f"WARNING: pip-audit {label}: {len(skipped)} dependencies not audited: "
              + ", ".join(d["name"] for d in skipped))
    if audited:
        print(f"pip-audit {label}: {audited} dependencies audited, no known vulnerabilities")
    return True


def main() -> int:
    ignore, problems = ignored_vulns(datetime.date.today())
    for problem in problems:
        print(problem, file=sys.stderr)
    with ThreadPoolExecutor(len(TARGETS)) as pool:  # each waits on its own pip resolve and network calls
        results = list(pool.map(lambda labelled: audit(*labelled, ignore), TARGETS))
    return 0 if all(results) and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
