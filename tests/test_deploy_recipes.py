"""The deployment recipes (docs/deployment.md) run the tested commands: the server image's entrypoint is
scripts/serve, whose verbs run here for real (migrate on a fresh PostgreSQL database, web until /healthz and
/ready answer through the image's own probe, a Celery worker until it answers a ping); the compose file,
the Helm chart and the Dockerfile only ever call those verbs, probe URLs that exist, run as the image's
non-root user and keep exactly one beat. No container runtime or helm binary is available here: the
recipes themselves are checked statically."""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
import yaml
from django.conf import settings
from django.urls import Resolver404, resolve

from csm.celery import app
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
SERVE = ROOT / "scripts" / "serve"
DOCKERFILE = ROOT / "deploy" / "server" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
CHART = ROOT / "deploy" / "helm" / "csm"
PROBE_PATHS = {"/healthz", "/ready"}


def serve_verbs():
    """The verbs of scripts/serve's case statement (its source is the truth, not a list here)."""
    body = SERVE.read_text().split('case "$verb" in', 1)[1]
    return set(re.findall(r"^  ([a-z]+)\)", body, re.MULTILINE))


def test_serve_has_the_verbs_the_recipes_need():
    assert {"web", "worker", "beat", "migrate", "manage", "probe"} <= serve_verbs()


def test_probe_paths_exist():
    for path in PROBE_PATHS:
        try:
            resolve(path)
        except Resolver404:
            pytest.fail(f"{path} is not a URL of csm")


# --- Dockerfile ----------------------------------------------------------------------------------------------

def _instructions():
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    instructions = _instructions()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) >= 2 and " AS builder" in stages[0]
    assert stages[-1] == "python:3.11-slim-bookworm"
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert users[-1] == "10001:10001"  # the chart's runAsUser (below)
    [healthcheck] = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    assert '"/app/scripts/serve", "probe", "/healthz"' in healthcheck
    assert [arg for op, arg in instructions if op == "ENTRYPOINT"] == ['["/app/scripts/serve"]']
    assert "collectstatic" in " ".join(arg for op, arg in instructions if op == "RUN")


def test_dockerfile_bakes_in_no_secret_and_installs_the_runtime_libraries_of_scripts_setup():
    instructions = _instructions()
    baked = " ".join(arg for op, arg in instructions if op in ("ENV", "ARG"))
    for name in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "PASSWORD", "TOKEN"):
        assert name not in baked
    setup = (ROOT / "scripts" / "setup").read_text()
    runtime_libs = set(re.findall(r"want (lib\S+|fonts-\S+);", setup))
    runtime_stage = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    assert runtime_libs and all(lib in runtime_stage for lib in runtime_libs), runtime_libs


# --- compose -------------------------------------------------------------------------------------------------

def test_compose_services_run_serve_verbs_with_probes_on_real_urls():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "migrate", "postgres", "redis"} <= set(services)
    assert services["postgres"]["image"] == "postgres:15" and services["redis"]["image"] == "redis:7"
    verbs = serve_verbs()
    csm_services = {name: s for name, s in services.items() if s.get("build", {}).get("dockerfile")}
    assert set(csm_services) == {"web", "worker", "beat", "migrate"}
    for name, service in csm_services.items():
        assert service["build"]["dockerfile"] == "deploy/server/Dockerfile"
        assert service["command"][0] in verbs, name
        assert "csm-data:/var/lib/csm" in service["volumes"][0]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    web_probe = services["web"]["healthcheck"]["test"]
    assert web_probe[1:3] == ["/app/scripts/serve", "probe"] and web_probe[3] in PROBE_PATHS
    assert "deploy" not in services["beat"] or services["beat"]["deploy"].get("replicas", 1) == 1
    assert {"csm-data", "pg-data"} <= set(compose["volumes"])


def test_compose_env_example_holds_placeholders_and_documented_settings_only():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    example = (ROOT / "deploy" / "compose" / "csm.env.example").read_text()
    settings_lines = [line for line in example.splitlines() if line and not line.startswith("#")]
    for line in settings_lines:
        name, value = line.split("=", 1)
        assert f"`{name}`" in documented, f"{name} is not in docs/configuration.md"
        if name == "SECRET_KEY" or name == "DATABASE_URL":
            assert "<" in value, f"{name} must be a placeholder"


# --- Helm chart ----------------------------------------------------------------------------------------------

def _template(name):
    return (CHART / "templates" / name).read_text()


def test_chart_values_and_metadata_parse_and_run_non_root():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "csm"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["podSecurityContext"]["runAsUser"] == 10001
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    assert "replicas" not in values["beat"], "beat must not be scalable"
    assert values["database"]["url"] == "" and values["secretKey"] == "", "no default secrets"


def test_chart_templates_call_serve_verbs_keep_one_beat_and_probe_real_urls():
    verbs = serve_verbs()
    called = set()
    for path in (CHART / "templates").glob("*.yaml"):
        called |= set(re.findall(r'"args" \((?:concat \()?list "([a-z]+)"', path.read_text()))
    assert called == {"web", "worker", "beat", "migrate"} and called <= verbs
    beat = _template("beat.yaml")
    assert re.search(r"^  replicas: 1$", beat, re.MULTILINE) and "Values.beat.replicas" not in beat
    assert "type: Recreate" in beat
    web = _template("web.yaml")
    assert set(re.findall(r'"path" "([^"]+)"', web)) == PROBE_PATHS
    assert '"name" "Host" "value" .Values.host' in web  # Django's host check: the probe names the host
    job = _template("migrate-job.yaml")
    assert "helm.sh/hook: pre-install,pre-upgrade" in job
    pod = _template("_helpers.tpl")
    assert "podSecurityContext" in pod and "Values.securityContext" in pod


def test_chart_templates_are_balanced():
    """Without helm to render them: every action is closed and every block has its end."""
    for path in (CHART / "templates").iterdir():
        text = path.read_text()
        assert text.count("{{") == text.count("}}"), path.name
        actions = re.findall(r"\{\{-?\s*(/\*|\w+)", text)
        opened = sum(1 for a in actions if a in ("if", "with", "range", "define"))
        assert opened == actions.count("end"), path.name


# --- scripts/serve for real ----------------------------------------------------------------------------------

def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def fresh_database():
    """An empty PostgreSQL database beside the test database, dropped afterwards."""
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/')}_deploy_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(url._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def serve_env(fresh_database, tmp_path_factory):
    """What a container gets: production settings from the environment, nothing else."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DATABASE_URL", "CELERY_", "CACHE_URL", "CSM_", "DJANGO_", "DEBUG", "SECRET_KEY",
                                  "ALLOWED_HOSTS", "PROMETHEUS_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "csm.settings", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "csm.example.com", "CSM_BASE_URL": "https://csm.example.com",
        "DATABASE_URL": fresh_database, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CACHE_URL": settings.CACHES["default"]["LOCATION"], "CSM_VAR_DIR": str(tmp_path_factory.mktemp("serve-var")),
        "CSM_VENV": str(Path(sys.executable).parent.parent), "CSM_LISTEN": f"127.0.0.1:{_free_port()}",
        "CSM_WEB_WORKERS": "1",
    })
    return env


def _serve(env, *args, timeout=600):
    return subprocess.run([str(SERVE), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def migrated(serve_env):
    result = _serve(serve_env, "migrate")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _start(env, *args):
    return subprocess.Popen([str(SERVE), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.stdout.read()


@pytest.mark.slow
def test_migrate_verb_migrates_a_fresh_database(migrated, serve_env):
    assert "Applying snapshots." in migrated and "Applying journal." in migrated
    again = _serve(serve_env, "migrate")
    assert again.returncode == 0 and "No migrations to apply" in again.stdout


@pytest.mark.slow
def test_manage_verb_runs_manage_py(migrated, serve_env):
    result = _serve(serve_env, "manage", "check")
    assert result.returncode == 0 and "no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.slow
def test_web_verb_serves_and_its_probe_passes_healthz_and_ready(migrated, serve_env):
    web = _start(serve_env, "web")
    try:
        def healthy():
            assert web.poll() is None, "scripts/serve web exited"
            return _serve(serve_env, "probe", "/healthz", timeout=60).returncode == 0
        wait_for(healthy, "scripts/serve web to answer /healthz")
        ready = _serve(serve_env, "probe", "/ready", timeout=60)
        assert ready.returncode == 0 and "probe /ready: 200" in ready.stdout, ready.stdout + ready.stderr
        # Why the probe names a host: Django refuses a Host outside ALLOWED_HOSTS (a bare 127.0.0.1 here).
        base = f"http://{serve_env['CSM_LISTEN']}"
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 400
        answer = requests.get(f"{base}/healthz", headers={"Host": "csm.example.com"}, timeout=10)
        assert answer.status_code == 200 and answer.text == "ok"
        missing = _serve(serve_env, "probe", "/no-such-page", timeout=60)
        assert missing.returncode == 1
    finally:
        output = _stop(web)
    # The only error logged is the refused bare-address request above.
    assert output.count("Traceback") == output.count("DisallowedHost: Invalid HTTP_HOST header"), output


@pytest.mark.slow
def test_worker_verb_runs_a_celery_worker_that_answers_a_ping(migrated, serve_env):
    # Its own queue and name: it must not take tasks meant for the other tests' workers on this broker.
    name = f"deploy-test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    worker = _start(serve_env, "worker", "--pool", "solo", "-Q", f"deploy-test-{uuid.uuid4().hex[:8]}", "-n", name)
    try:
        def answers():
            assert worker.poll() is None, "scripts/serve worker exited"
            return app.control.ping(destination=[name], timeout=1)
        replies = wait_for(answers, "the worker started by scripts/serve to answer a ping")
        assert replies == [{name: {"ok": "pong"}}]
    finally:
        output = _stop(worker)
    assert "Traceback" not in output, output


def test_worker_and_beat_verbs_refuse_to_run_without_a_broker(serve_env):
    env = {key: value for key, value in serve_env.items() if key != "CELERY_BROKER_URL"}
    for verb in ("worker", "beat"):
        result = _serve(env, verb, timeout=60)
        assert result.returncode == 2 and "CELERY_BROKER_URL is not set" in result.stderr


def test_unknown_verb_prints_usage():
    result = subprocess.run([str(SERVE), "frobnicate"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "scripts/serve web" in result.stderr
