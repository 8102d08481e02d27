"""Proves a fresh clone starts with only what it declares: the server with requirements.txt alone and
the agent with `pip install ./agent` alone. A package that the code imports but only the dev/test
environment happens to have (cryptography once came in through a test tool) fails this loudly.

Server: a virtualenv built from requirements.txt ALONE imports every module of every first-party app
(found from INSTALLED_APPS and the top-level folders with an apps.py or __init__.py, not from a list that
goes stale) and checks that every import statement in them (also the ones inside functions) resolves;
then runs `manage.py check`, `migrate` on a throwaway SQLite database and scripts/start itself on that
venv until /login/ answers 200, and checks that it runs production-like (DEBUG off: csm's own 404 page, the
hashed stylesheet from WhiteNoise, a generated var/secret_key readable by its owner only). Agent: a
virtualenv with only the agent installed imports every module, and `csm-agent --help` and
`csm-agent fingerprint FILE` work.

The virtualenvs are cached outside the clone (CI clones afresh each time) by the sha256 of what they
are built from: a cached run spends its time on the migrations and the boot (about half a minute).

Usage: scripts/check-clean-install [--server-only | --agent-only]   (runs this file with the system python)
Environment: CSM_CLEAN_VENV_CACHE (default ~/.cache/csm-clean-venv),
             CSM_CLEAN_BOOT_TIMEOUT (seconds to wait for /login/, default 300: migrations and the demo history).
Standard library only: it runs before any virtualenv exists.
"""

import ast
import contextlib
import fcntl
import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CSM_CLEAN_VENV_CACHE") or Path.home() / ".cache" / "csm-clean-venv")
BOOT_TIMEOUT = float(os.environ.get("CSM_CLEAN_BOOT_TIMEOUT") or 300)
# Top-level folders that are not part of the server even when they hold Python packages.
NOT_SERVER = {"tests", "agent", "bench", "scripts", "docs", "deploy", "var", "staticfiles", "media",
              "test-artifacts", "node_modules"}
# Environment a developer or CI may have set that would make the check use something other than the
# embedded default, or leak packages from outside the venv.
SCRUB_PREFIXES = ("DATABASE_URL", "CELERY_", "CACHE_URL", "CSM_", "DJANGO_", "PYTHON", "VIRTUAL_ENV")
SCRUB = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}


class CheckFailed(Exception):
    pass


def say(message):
    print(message, flush=True)


# --- Static import scan (used in-venv and by tests/test_quickstart.py) -------------------------------------

def is_test_file(path):
    return ("tests" in path.parts or path.name.startswith("test_") or path.name.endswith("_test.py")
            or path.name == "conftest.py")


def runtime_files(package_dir):
    """Every non-test .py file of a package folder, with its dotted module name."""
    package_dir = Path(package_dir)
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir.parent)
        if "__pycache__" in relative.parts or is_test_file(relative):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts)


def _guards_import_error(handler):
    names = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in names for t in types)


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def absolute_imports(path):
    """(line, top-level module) of every absolute import in a file, at any depth, except the optional
    ones: inside `try: ... except ImportError` or `if TYPE_CHECKING:`."""
    found = []

    def visit(node, optional):
        if isinstance(node, ast.Import) and not optional:
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not optional and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            guarded = optional or any(_guards_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, guarded)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, optional)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, optional)
        else:
            for child in ast.iter_child_nodes(node):
                visit(child, optional)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), False)
    return found


def server_packages():
    """First-party server packages: the apps of INSTALLED_APPS that live in this repository plus every
    top-level folder with an apps.py or __init__.py (needs django.setup())."""
    from django.apps import apps

    def first_party(folder):
        # Not a virtualenv inside the clone (CI's .venv is a real folder there, holding rest_framework...).
        return (folder.is_dir() and folder.name not in NOT_SERVER and not folder.name.startswith((".", "_"))
                and not (folder / "pyvenv.cfg").exists())

    candidates = set()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if ROOT in path.parents and "site-packages" not in path.parts:
            candidates.add(ROOT / path.relative_to(ROOT).parts[0])
    candidates.update(folder for folder in ROOT.iterdir()
                      if (folder / "__init__.py").exists() or (folder / "apps.py").exists())
    return {folder.name: folder for folder in sorted(candidates) if first_party(folder)}


def import_walk(packages):
    """Imports every runtime module of the packages and resolves every import statement in them.
    Returns a list of problems (empty: all good)."""
    problems = []
    for folder in packages.values():
        for path, module in runtime_files(folder):
            where = path.relative_to(folder.parent)
            try:
                if module.rpartition(".")[2] != "__main__":  # running it is the CLI, not an import; scanned below
                    importlib.import_module(module)
            except BaseException as exc:  # noqa: BLE001 - a SystemExit at import time is a failure too
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                problems.append(f"{where}: importing {module} fails: {last}")
            for line, top in absolute_imports(path):
                if top in sys.modules or top in sys.stdlib_module_names or top in sys.builtin_module_names:
                    continue  # (find_spec raises for some loaded modules, e.g. kombu's lazy __spec__ = None)
                if importlib.util.find_spec(top) is None:
                    problems.append(f"{where}:{line}: imports {top!r}, which is not installed")
    return problems


def _in_venv_main(mode):
    """Runs inside a clean virtualenv (re-invoked by the orchestration below)."""
    if mode == "--walk-server":
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csm.settings")
        import django

        django.setup()
        packages = server_packages()
    else:
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]  # the installed agent only
        spec = importlib.util.find_spec("csm_agent")
        if spec is None:
            print("csm_agent is not installed in this virtualenv", file=sys.stderr)
            return 1
        packages = {"csm_agent": Path(next(iter(spec.submodule_search_locations)))}
    print("packages: " + ", ".join(packages))
    modules = sum(1 for folder in packages.values() for _ in runtime_files(folder))
    problems = import_walk(packages)
    for problem in problems:
        print(f"  MISSING  {problem}", file=sys.stderr)
    print(f"{modules} modules imported and scanned, {len(problems)} problem(s)")
    return 1 if problems else 0


# --- Orchestration (system python) ---------------------------------------------------------------------------

def run(command, *, env, cwd=ROOT, timeout=600, what):
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,  # noqa: S603 - our argv
                            timeout=timeout)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        # Name the missing modules once, below a possibly long traceback.
        missing = sorted(set(re.findall(r"No module named '([^']+)'|imports '([^']+)', which is not installed",
                                        output)) - {("", "")})
        names = sorted({a or b for a, b in missing})
        raise CheckFailed(f"{what} exited {result.returncode}:\n{output}"
                          + (f"\nnot installed: {', '.join(names)}" if names else ""))
    say(f"    ok ({time.monotonic() - started:.1f}s)")
    return result.stdout


def clean_env(venv, var_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES) and k not in SCRUB}
    env.update({"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "PYTHONNOUSERSITE": "1",
                "CSM_VAR_DIR": str(var_dir), "CSM_STATIC_ROOT": str(var_dir / "static")})
    return env


def python_for_venvs():
    for candidate in ("python3.11", "python3"):
        if shutil.which(candidate):
            return shutil.which(candidate)
    return sys.executable


def cached_venv(kind, key_material, install_args, cwd):
    """A virtualenv under CACHE named by the sha256 of what it is built from (and the interpreter);
    built once, under a lock, and marked complete only when pip succeeded."""
    python = python_for_venvs()
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"],  # noqa: S603 - our argv
                             capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(key_material + version.encode()).hexdigest()[:16]
    venv = CACHE / f"{kind}-{digest}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{kind}-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            say(f"    cached: {venv}")
            os.utime(venv)  # last used: what the pruning below goes by
            return venv, False
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        say(f"    building {venv} (pip install {' '.join(install_args)})")
        subprocess.run([python, "-m", "venv", str(venv)], check=True)  # noqa: S603 - our argv
        result = subprocess.run(  # noqa: S603 - our argv
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *install_args],
            cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONNOUSERSITE": "1"})
        if result.returncode != 0:
            raise CheckFailed(f"pip install {' '.join(install_args)} failed:\n{result.stdout}{result.stderr}")
        (venv / ".complete").touch()
        say(f"    ok ({time.monotonic() - started:.1f}s)")
    # Keep the cache bounded: drop venvs of this kind built from older files and unused for a week.
    for old in CACHE.glob(f"{kind}-*"):
        if old != venv and time.time() - old.stat().st_mtime > 7 * 86400:
            shutil.rmtree(old, ignore_errors=True)
            (CACHE / f".{old.name}.lock").unlink(missing_ok=True)
    return venv, True


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def boot_quick_start(venv, var_dir, env):
    """scripts/start itself (CSM_VENV: on this venv, no setup) on a free loopback port until /login/
    answers 200; then the whole process group is stopped."""
    listen = f"127.0.0.1:{free_port()}"
    url = f"http://{listen}/login/"
    log_path = var_dir / "start.log"
    env = {**env, "CSM_VENV": str(venv), "CSM_LISTEN": listen}
    say(f"==> server: scripts/start on {listen}, waiting up to {BOOT_TIMEOUT:.0f}s for {url} to answer 200")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(ROOT / "scripts" / "start")],  # noqa: S603 - our argv
                                   cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        last = "no answer yet"
        while True:
            if process.poll() is not None:
                raise CheckFailed(f"scripts/start exited {process.returncode} before {url} answered:\n"
                                  + log_path.read_text(errors="replace")[-6000:])
            if time.monotonic() - started > BOOT_TIMEOUT:
                raise CheckFailed(f"{url} did not answer 200 within {BOOT_TIMEOUT:.0f}s (last: {last}):\n"
                                  + log_path.read_text(errors="replace")[-6000:])
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http  # nosec B310
                    body = response.read().decode(errors="replace")
                if "csrfmiddlewaretoken" not in body:
                    raise CheckFailed(f"{url} answered 200 without a sign-in form:\n{body[:2000]}")
                break
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code >= 500:
                    raise CheckFailed(f"{url} answered {exc.code}:\n"
                                      + log_path.read_text(errors="replace")[-6000:]) from exc
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = str(getattr(exc, "reason", exc))
            time.sleep(0.3)
        say(f"    ok: GET /login/ -> 200 ({time.monotonic() - started:.1f}s)")
        check_production_like(f"http://{listen}", var_dir, body)
        say("    ok: production-like (DEBUG off: the app's 404 page; CSS from WhiteNoise under a hashed name; "
            "var/secret_key 0600)")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _get(url):
    """(status, headers, body) of a GET, HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback http  # nosec B310
            return response.status, response.headers, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode(errors="replace")


def check_production_like(base, var_dir, login_body):
    """The quick start runs as production would (DEBUG off): an unknown URL gets csm's own 404 page, not
    Django's debug page listing every URL pattern; the stylesheet comes from WhiteNoise under its hashed
    (manifest) name, and so do the API docs' bundles; the secret key was generated into var/secret_key,
    readable by its owner only."""
    status, _, body = _get(f"{base}/no-such-page-{os.getpid()}/")
    if status != 404 or "URLconf" in body or "Not found" not in body:
        raise CheckFailed(f"an unknown URL answered {status} and not csm's own 404 page (DEBUG on?):\n{body[:2000]}")
    css = re.search(r'href="(/static/csm/app\.[0-9a-f]{12}\.css)"', login_body)
    if css is None:
        raise CheckFailed("the sign-in page does not link the stylesheet under a hashed name "
                          f"(ManifestStaticFilesStorage):\n{login_body[:2000]}")
    status, headers, _ = _get(base + css.group(1))
    if status != 200 or not (headers.get("Content-Type") or "").startswith("text/css"):
        raise CheckFailed(f"{css.group(1)} answered {status} {headers.get('Content-Type')}, not the stylesheet")
    for page in ("/api/docs/", "/api/redoc/"):  # their bundles come from csm's own static files too
        status, _, body = _get(base + page)
        if status != 200:
            raise CheckFailed(f"{page} answered {status}")
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', body):
            if _get(base + asset)[0] != 200:
                raise CheckFailed(f"{asset} (linked from {page}) does not answer 200")
    key_file = var_dir / "secret_key"
    if not key_file.exists() or key_file.stat().st_mode & 0o077 or len(key_file.read_text().strip()) < 50:
        raise CheckFailed(f"{key_file}: no generated secret key readable by its owner only")


def check_server(work):
    say("==> server: virtualenv from requirements.txt alone")
    requirements = ROOT / "requirements.txt"
    venv, _ = cached_venv("server", requirements.read_bytes(), ["-r", str(requirements)], ROOT)
    var_dir = work / "server-var"
    var_dir.mkdir()
    env = clean_env(venv, var_dir)
    python = str(venv / "bin" / "python")
    say("==> server: import every module of every app, resolve every import statement (lists all that is missing)")
    out = run([python, str(Path(__file__).resolve()), "--walk-server"], env=env,
              what="the server import walk (a module imports something requirements.txt does not install)")
    say("    " + out.strip().replace("\n", "\n    "))
    say("==> server: manage.py check (embedded default: no DATABASE_URL / CELERY_BROKER_URL)")
    run([python, "manage.py", "check", "--fail-level", "ERROR"], env=env, what="manage.py check")
    say(f"==> server: manage.py migrate on a throwaway SQLite database ({var_dir / 'csm.sqlite3'})")
    run([python, "manage.py", "migrate", "--noinput"], env=env, what="manage.py migrate")
    boot_quick_start(venv, var_dir, env)


def check_agent(work):
    say("==> agent: virtualenv with `pip install ./agent` alone")
    source = work / "agent"
    shutil.copytree(ROOT / "agent", source,
                    ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "*.pyc"))
    # The venv (the agent's dependencies) is keyed by pyproject.toml; the agent's own code changes more
    # often and is reinstalled without dependencies (seconds) when it differs from what the venv holds.
    code = hashlib.sha256(b"".join(path.relative_to(source).as_posix().encode() + b"\0" + path.read_bytes()
                                   for path in sorted(source.rglob("*")) if path.is_file())).hexdigest()[:16]
    venv, built = cached_venv("agent", (source / "pyproject.toml").read_bytes(), [str(source)], work)
    stamp = venv / f".agent-code-{code}"
    with open(venv / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if built:
            stamp.touch()
        elif not stamp.exists():
            say("    agent code changed since the venv was built: pip install --no-deps --force-reinstall ./agent")
            for old in venv.glob(".agent-code-*"):
                old.unlink()
            run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps",
                 "--force-reinstall", str(source)], env={**os.environ, "PYTHONNOUSERSITE": "1"}, cwd=work,
                what="pip install ./agent")
            stamp.touch()
    env = clean_env(venv, work / "agent-var")
    agent = str(venv / "bin" / "csm-agent")
    say("==> agent: import every module, resolve every import statement")
    out = run([str(venv / "bin" / "python"), str(Path(__file__).resolve()), "--walk-agent"], env=env, cwd=work,
              what="the agent import walk (a module imports something agent/pyproject.toml does not install)")
    say("    " + out.strip().replace("\n", "\n    "))
    say("==> agent: csm-agent --help")
    out = run([agent, "--help"], env=env, cwd=work, what="csm-agent --help")
    if not out.startswith("usage: csm-agent") or "fingerprint" not in out or "snapshot" not in out:
        raise CheckFailed(f"csm-agent --help printed something unexpected:\n{out}")
    sample = work / "sample.bin"
    sample.write_bytes(b"csm clean-install check\n")
    say(f"==> agent: csm-agent fingerprint {sample}")
    out = run([agent, "fingerprint", str(sample)], env=env, cwd=work, what="csm-agent fingerprint")
    if out.strip() != hashlib.sha256(sample.read_bytes()).hexdigest():
        raise CheckFailed(f"csm-agent fingerprint printed {out.strip()!r}, not the file's SHA-256")


def main(argv):
    if argv[:1] in (["--walk-server"], ["--walk-agent"]):
        return _in_venv_main(argv[0])
    unknown = [a for a in argv if a not in ("--server-only", "--agent-only")]
    if unknown:
        print(__doc__, file=sys.stderr)
        return 2
    started = time.monotonic()
    say(f"==> clean-install check (virtualenvs cached in {CACHE})")
    try:
        with tempfile.TemporaryDirectory(prefix="csm-clean-install-") as work:
            if "--agent-only" not in argv:
                check_server(Path(work))
            if "--server-only" not in argv:
                check_agent(Path(work))
    except (CheckFailed, subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        print(f"\nCLEAN-INSTALL CHECK FAILED: {exc}\n\nA fresh clone would fail the same way: declare every "
              "package the code imports (server: requirements.txt, pinned; agent: agent/pyproject.toml).",
              file=sys.stderr)
        return 1
    say(f"==> clean-install check passed ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
