"""The quick start on the embedded default: SQLite in a fresh directory, tasks in-process, no
PostgreSQL / Redis settings. migrate + create_demo print credentials that sign in over HTTP, and the
SQLite database has the append-only triggers. A clean install from requirements.txt provides every package
the server imports."""

import importlib.metadata
import importlib.util
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _embedded_env(var_dir):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DATABASE_URL", "CELERY_", "CACHE_URL", "CSM_", "DJANGO_", "DEBUG", "SECRET_KEY",
                                  "ALLOWED_HOSTS"))}
    env.update({"DJANGO_SETTINGS_MODULE": "csm.settings", "CSM_VAR_DIR": str(var_dir)})
    return env


def _manage(env, *args):
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("csm-var")
    env = _embedded_env(var_dir)
    _manage(env, "migrate", "--noinput")
    out = _manage(env, "create_demo")
    email = re.search(r"email:\s+(\S+)", out).group(1)
    password = re.search(r"password:\s+(\S+)", out).group(1)
    return {"env": env, "var_dir": var_dir, "email": email, "password": password, "out": out}


def test_create_demo_is_idempotent(quickstart):
    again = _manage(quickstart["env"], "create_demo")
    assert "demo org exists" in again and quickstart["password"] not in again


def test_printed_credentials_sign_in_over_http(quickstart):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=quickstart["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        deadline = time.monotonic() + 120
        while True:  # wait until the server accepts connections
            try:
                login_page = session.get(f"{base}/login/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "runserver did not start"
                time.sleep(0.3)
        assert login_page.status_code == 200
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        response = session.post(f"{base}/login/", data={
            "csrfmiddlewaretoken": csrf, "username": quickstart["email"], "password": quickstart["password"],
        }, headers={"Referer": f"{base}/login/"}, timeout=30)
        assert response.status_code == 200 and response.url == f"{base}/o/demo/"
        assert "Demo" in response.text and "Sign out" in response.text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sqlite_triggers_keep_the_audit_trail_append_only(quickstart):
    with sqlite3.connect(quickstart["var_dir"] / "csm.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] >= 2
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_auditevent SET actor_label = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_auditevent")


def test_verify_audit_passes_on_the_fresh_install(quickstart):
    assert "demo: ok" in _manage(quickstart["env"], "verify_audit", "--org", "demo")


def _load_clean_install_check():
    spec = importlib.util.spec_from_file_location("check_clean_install", ROOT / "scripts" / "check_clean_install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _installed_by(requirements_file):
    """Distributions `pip install -r requirements_file` brings: its requirements and, following the
    installed metadata, theirs (with extras and environment markers)."""
    pending = [Requirement(line.split("#")[0].strip()) for line in requirements_file.read_text().splitlines()
               if line.split("#")[0].strip() and not line.startswith("-")]
    seen = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(requirement.name) or []:
            nested = Requirement(line)
            extras = requirement.extras or {""}
            if nested.marker is None or any(nested.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(nested)
    return seen


def test_every_package_the_server_imports_is_installed_by_requirements_txt():
    # A fresh clone's scripts/start installs requirements.txt only: cryptography (alert secrets) once came
    # into the test environment through a test tool, and the quick start died with ModuleNotFoundError.
    check = _load_clean_install_check()
    packages = check.server_packages()
    assert {"csm", "tenants", "audit", "snapshots"} <= set(packages)
    installed = _installed_by(ROOT / "requirements.txt")
    distributions = importlib.metadata.packages_distributions()
    not_required = []
    for folder in packages.values():
        for path, _module in check.runtime_files(folder):
            for line, top in check.absolute_imports(path):
                if top in sys.stdlib_module_names or top in packages or top == "__future__":
                    continue
                owners = {canonicalize_name(dist) for dist in distributions.get(top, [])}
                if not owners & installed:
                    not_required.append(f"{path.relative_to(ROOT)}:{line} imports {top} ({', '.join(owners)})")
    assert not not_required, "not installed by requirements.txt:\n" + "\n".join(not_required)


def test_scripts_start_runs_production_like_and_keeps_its_secret_key(quickstart):
    """scripts/start itself (on this virtualenv, embedded default, on the quick start's migrated database
    with its demo org), twice: DEBUG off, so an unknown URL gets csm's own 404 page and the CSS comes from
    WhiteNoise under its hashed name; the secret key is generated once into var/secret_key (0600) and
    reused by the next start."""
    check = _load_clean_install_check()
    venv = Path(sys.prefix)
    var_dir = quickstart["var_dir"]
    env = check.clean_env(venv, var_dir)
    key_file = var_dir / "secret_key"
    assert not key_file.exists()
    check.boot_quick_start(venv, var_dir, env)  # includes check.check_production_like
    key = key_file.read_text()
    assert "generated a secret key" in (var_dir / "start.log").read_text()
    check.boot_quick_start(venv, var_dir, env)
    assert key_file.read_text() == key and key_file.stat().st_mode & 0o777 == 0o600
    second = (var_dir / "start.log").read_text()
    assert "generated a secret key" not in second and "demo org exists" in second
    assert "static files: unchanged" in second  # a restart skips the minute of hashing and compressing


def test_erasure_of_a_person_on_sqlite_keeps_the_journal_verifying(quickstart):
    """The embedded default's triggers allow exactly the counted erasure (csm/db.py) and nothing else."""
    _manage(quickstart["env"], "shell", "-c", (
        "from django.contrib.auth import get_user_model\n"
        "from audit.context import AuditContext\n"
        "from tenants.models import Membership, Org\n"
        "from tenants.services import create_api_token\n"
        "org = Org.objects.get(slug='demo')\n"
        "eve = get_user_model().objects.create_user('eve@example.com', 'eve@example.com', 'x' * 20)\n"
        "Membership.objects.create(org=org, user=eve, role='member')\n"
        "create_api_token(AuditContext.for_user(eve, ip='198.51.100.9'), org, 'laptop', user=eve)\n"))
    db_path = quickstart["var_dir"] / "csm.sqlite3"
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM audit_auditevent WHERE actor_label = 'eve@example.com'").fetchone()[0]
        assert not db.execute("SELECT count(*) FROM audit_journalleaf WHERE payload LIKE '%eve@example.com%'"
                              ).fetchone()[0]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_auditevent SET actor_label = '[erased]' WHERE actor_label = 'eve@example.com'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_auditevent SET action = 'org.updated', erasures = erasures + 1")
    out = _manage(quickstart["env"], "erase_person", "eve@example.com", "--yes")
    assert out.startswith("erased eve@example.com: 1 user account(s), known to 1 org(s) (demo)")
    with sqlite3.connect(db_path) as db:
        for table, column in (("audit_auditevent", "actor_label"), ("audit_auditevent", "ip"),
                              ("auth_user", "email"), ("audit_journalleaf", "payload")):
            assert not db.execute(f"SELECT count(*) FROM {table} WHERE {column} LIKE '%eve@example.com%' "  # noqa: S608
                                  f"OR {column} = '198.51.100.9'").fetchone()[0], table
    assert "demo: ok" in _manage(quickstart["env"], "verify_audit", "--org", "demo")
