"""The floor plan (docs/architecture.md) as a test: apps import only apps on lower floors.

Floors from the ground up. An app may import its own modules and any app below it; an upward need
goes through a hook that the lower app exposes (``snapshots/hooks.py``). The one documented tie the
other way is the project package ``csm`` reaching ``tenants`` for authentication and org access
(``csm/api/``, ``csm/web.py``, the permission template tag), as NetBox's project
package imports its token model. Imports hidden inside functions are allowed only where they break a
real cycle (a Celery task module and the services module that enqueues it) or in ``apps.py`` ``ready()``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOORS = ["csm", "journal", "audit", "tenants", "identity", "snapshots", "evidence", "vulns", "policies", "alerts",
          "reports"]
LEVEL = {app: floor for floor, app in enumerate(FLOORS)}
# csm → tenants: authentication, org resolution and role checks for the API base and web pages.
ALLOWED_UP = {("csm", "tenants"), ("csm", "audit")}


def _modules():
    for app in FLOORS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path


def _imports(tree):
    """(imported top-level package, line, inside a function?) for every import in the module."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def test_imports_go_down_the_floors_only():
    upward = []
    for app, path in _modules():
        for target, line, _ in _imports(ast.parse(path.read_text(), str(path))):
            if target in LEVEL and LEVEL[target] > LEVEL[app] and (app, target) not in ALLOWED_UP:
                where = f"{path.relative_to(ROOT)}:{line}"
                upward.append(f"{where} imports {target} (floor {LEVEL[target]} > {LEVEL[app]})")
    assert not upward, "imports that run up the floors (use a hook):\n" + "\n".join(upward)


def _cycle_breaker(path: Path, target_module: str) -> bool:
    """A services module (``services.py`` or one of a ``services/`` package) importing its app's tasks.py
    inside a function: tasks.py imports the services at the top."""
    return (path.name == "services.py" or path.parent.name == "services") and target_module.endswith(".tasks")


@pytest.mark.parametrize("app", FLOORS)
def test_no_hidden_imports_except_to_break_a_cycle(app):
    hidden = []
    for owner, path in _modules():
        if owner != app or path.name == "apps.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.level == 0 and inner.module:
                    top = inner.module.split(".")[0]
                    if top in LEVEL and not _cycle_breaker(path, inner.module):
                        hidden.append(f"{path.relative_to(ROOT)}:{inner.lineno} from {inner.module}")
    assert not hidden, "imports hidden inside functions:\n" + "\n".join(sorted(set(hidden)))
