"""Reporting reliability: gzip bodies, retries with idempotency keys, exit codes, config and secrecy."""

import hashlib
import json
import socket

import pytest
from csm_agent import client as agent_client
from csm_agent.client import CsmClient, _retry_after
from csm_agent.errors import ServerError, UsageError

TOKEN = "tok_secret_value_123"


@pytest.fixture
def file_tree(tmp_path):
    f = tmp_path / "app.bin"
    f.write_bytes(b"release 1")
    return f


def snapshot(run, csm_args, path, *extra):
    return run("snapshot", "path", "prod", "--path", path, "--name", "app", *csm_args, *extra)


def test_report_is_gzipped_with_bearer_token_and_kosli_payload(run, fake_csm, csm_args, file_tree):
    code, out, err = snapshot(run, csm_args, file_tree)
    assert code == 0, err
    (req,) = fake_csm.reports
    assert req.method == "PUT"
    assert req.path == "/api/v2/environments/acme/prod/report/server"
    assert req.headers["Content-Encoding"] == "gzip"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(req.headers["Idempotency-Key"]) == 36
    (artifact,) = req.json["artifacts"]
    assert artifact["digests"] == {"app": hashlib.sha256(b"release 1").hexdigest()}
    assert isinstance(artifact["creationTimestamp"], int)
    assert "reported 1 artifacts to acme/prod" in err


def test_no_compress_sends_plain_json(run, fake_csm, csm_args, file_tree):
    assert snapshot(run, csm_args, file_tree, "--no-compress")[0] == 0
    (req,) = fake_csm.reports
    assert "Content-Encoding" not in req.headers
    assert json.loads(req.raw)["artifacts"][0]["digests"]["app"]


def test_retries_twice_then_succeeds_with_the_same_idempotency_key(run, fake_csm, csm_args, file_tree):
    busy = {"error": {"code": "unavailable", "message": "database is restarting", "fields": {}}}
    fake_csm.script = [(503, busy, {}), (502, busy, {}), (201, {"id": 7, "status": "pending"}, {})]
    code, _, err = snapshot(run, csm_args, file_tree)
    assert code == 0, err
    assert len(fake_csm.reports) == 3
    keys = {r.headers["Idempotency-Key"] for r in fake_csm.reports}
    bodies = {r.raw for r in fake_csm.reports}
    assert len(keys) == 1 and len(bodies) == 1  # the very same report, counted once by csm
    assert err.count("retrying in") == 2 and "database is restarting" in err
    # A second snapshot is a new report with a new key.
    fake_csm.script = [(201, {"id": 8}, {})]
    assert snapshot(run, csm_args, file_tree)[0] == 0
    assert fake_csm.reports[-1].headers["Idempotency-Key"] not in keys


def test_429_honours_retry_after(fake_csm):
    slept = []
    fake_csm.script = [(429, {"error": {"code": "throttled", "message": "slow down", "fields": {}}},
                        {"Retry-After": "7"}), (201, {"id": 1}, {})]
    client = CsmClient(fake_csm.url, TOKEN, "acme", sleep=slept.append)
    client.report("prod", "server", [])
    assert slept == [7.0]


def test_backoff_grows_exponentially_with_jitter(fake_csm, monkeypatch):
    slept = []
    monkeypatch.setattr(agent_client, "BACKOFF_BASE", 1.0)
    fake_csm.script = [(500, {}, {})] * 4 + [(201, {}, {})]
    client = CsmClient(fake_csm.url, TOKEN, "acme", max_retries=5, sleep=slept.append)
    client.report("prod", "server", [])
    assert len(slept) == 4
    assert all(0 <= s <= 2**i for i, s in enumerate(slept))


def test_retry_after_http_date():
    class R:
        headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}

    assert _retry_after(R()) == 0.0  # in the past: retry now


def test_gives_up_after_max_retries_with_exit_3(run, fake_csm, csm_args, file_tree):
    fake_csm.script = [(503, {"error": {"code": "unavailable", "message": "overloaded", "fields": {}}}, {})]
    code, _, err = snapshot(run, csm_args, file_tree, "--max-api-retries", "2")
    assert code == 3
    assert len(fake_csm.reports) == 3
    assert "giving up after 3 attempts" in err and "overloaded" in err


def test_server_rejection_shows_the_server_message_and_does_not_retry(run, fake_csm, csm_args, file_tree):
    fake_csm.script = [(400, {"error": {"code": "invalid", "message": "Environment type is K8S, not server.",
                                        "fields": {"type": "must be K8S"}}}, {})]
    code, _, err = snapshot(run, csm_args, file_tree)
    assert code == 3
    assert len(fake_csm.reports) == 1
    assert "Environment type is K8S, not server." in err and "type: must be K8S" in err


def test_unreachable_server_exit_3(run, file_tree):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run("snapshot", "path", "prod", "--path", file_tree, "--name", "a", "--host",
                       f"http://127.0.0.1:{port}", "--org", "acme", "--api-token", TOKEN, "--max-api-retries", "1")
    assert code == 3 and "cannot reach csm" in err and "giving up after 2 attempts" in err


def test_source_failure_reports_nothing_exit_2(run, fake_csm, csm_args, tmp_path):
    code, _, err = snapshot(run, csm_args, tmp_path / "missing")
    assert code == 2 and "No such file or directory" in err
    assert fake_csm.requests == []


def test_dry_run_prints_payload_and_sends_nothing(run, fake_csm, csm_args, file_tree):
    code, out, err = snapshot(run, csm_args, file_tree, "--dry-run", "--auto-environment")
    assert code == 0
    assert fake_csm.requests == []
    assert json.loads(out)["artifacts"][0]["digests"]["app"]
    assert "would PUT" in err and "/report/server" in err


def test_token_is_never_printed(run, fake_csm, csm_args, file_tree):
    fake_csm.script = [(500, {}, {}), (401, {"error": {"code": "not_authenticated", "message": "Invalid token.",
                                                       "fields": {}}}, {})]
    code, out, err = snapshot(run, csm_args, file_tree, "--debug")
    assert code == 3 and "Invalid token." in err
    assert "settings: Settings(" in err  # --debug logs the resolved settings...
    assert TOKEN not in out + err  # ...but never the token


def test_usage_errors_exit_1(run, fake_csm, file_tree):
    code, _, err = run("snapshot", "path", "prod", "--path", file_tree, "--name", "a", "--host", fake_csm.url,
                       "--api-token", TOKEN)
    assert code == 1 and "no org given" in err
    code, _, err = run("snapshot", "path", "prod", "--path", file_tree, "--name", "a", "--org", "acme",
                       "--host", fake_csm.url)
    assert code == 1 and "no API token" in err
    code, _, err = run("snapshot", "path", "prod", "--name", "a")
    assert code == 1 and "--path" in err
    code, _, err = run("snapshot", "nope", "prod")
    assert code == 1
    assert fake_csm.requests == []


def test_env_vars_and_config_file(run, fake_csm, file_tree, agent_env, monkeypatch):
    conf = agent_env / ".config" / "csm" / "agent.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text(f'host = "{fake_csm.url}"\norg = "from-file"\napi_token = "{TOKEN}"\nmax_api_retries = 0\n')
    conf.chmod(0o600)
    assert run("snapshot", "path", "prod", "--path", file_tree, "--name", "a")[0] == 0
    assert fake_csm.reports[-1].path.startswith("/api/v2/environments/from-file/")
    monkeypatch.setenv("CSM_ORG", "from-env")
    assert run("snapshot", "path", "prod", "--path", file_tree, "--name", "a")[0] == 0
    assert fake_csm.reports[-1].path.startswith("/api/v2/environments/from-env/")
    assert run("snapshot", "path", "prod", "--path", file_tree, "--name", "a", "--org", "from-flag")[0] == 0
    assert fake_csm.reports[-1].path.startswith("/api/v2/environments/from-flag/")
    # max_api_retries = 0 from the file: one attempt only
    fake_csm.script = [(503, {}, {})]
    assert run("snapshot", "path", "prod", "--path", file_tree, "--name", "a")[0] == 3
    assert len(fake_csm.reports) == 4


def test_explicit_config_file_errors(run, tmp_path, file_tree):
    code, _, err = run("--config", tmp_path / "missing.toml", "snapshot", "path", "e", "--path", file_tree,
                       "--name", "a")
    assert code == 1 and "does not exist" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('hots = "x"\n')
    code, _, err = run("snapshot", "path", "e", "--path", file_tree, "--name", "a", "--config", bad)
    assert code == 1 and "unknown key 'hots'" in err


def test_auto_environment_creates_missing_env_with_the_right_type(run, fake_csm, csm_args, file_tree):
    fake_csm.strict = True
    code, _, err = snapshot(run, csm_args, file_tree, "--auto-environment", "--description", "web servers")
    assert code == 0, err
    calls = [(r.method, r.path) for r in fake_csm.requests]
    report = ("PUT", "/api/v2/environments/acme/prod/report/server")
    assert calls == [report, ("PUT", "/api/v2/environments/acme"), report]
    assert fake_csm.requests[1].json == {"name": "prod", "type": "server", "description": "web servers"}
    # The re-sent report is the same report: same key, same body.
    first, again = fake_csm.requests[0], fake_csm.requests[2]
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"] and first.raw == again.raw
    # Existing environment: never touched.
    fake_csm.requests.clear()
    assert snapshot(run, csm_args, file_tree, "--auto-environment")[0] == 0
    assert [(r.method, r.path) for r in fake_csm.requests] == [report]


def test_missing_environment_without_auto_environment_exit_3(run, fake_csm, csm_args, file_tree):
    fake_csm.strict = True
    code, _, err = snapshot(run, csm_args, file_tree)
    # An older server's bare 404: the agent adds which environment and the two ways to fix it.
    assert code == 3 and "HTTP 404" in err and "Not found." in err
    assert "PUT /api/v2/environments/" in err and "--auto-environment" in err
    assert len(fake_csm.requests) == 1


def test_interval_loop_reports_repeatedly_and_survives_errors(run, fake_csm, csm_args, file_tree):
    fake_csm.script = [(201, {}, {}), (400, {"error": {"code": "invalid", "message": "nope", "fields": {}}}, {}),
                       (201, {}, {})]
    code, _, err = snapshot(run, csm_args, file_tree, "--interval", "0.01", "--max-reports", "3")
    assert code == 0
    assert len(fake_csm.reports) == 3
    assert "nope" in err
    assert len({r.headers["Idempotency-Key"] for r in fake_csm.reports}) == 3


def test_client_rejects_bad_settings():
    with pytest.raises(UsageError):
        CsmClient("http://x", TOKEN, "")
    with pytest.raises(UsageError):
        CsmClient("http://x", TOKEN, "acme", max_retries=-1)


def test_server_error_carries_fields(fake_csm):
    fake_csm.script = [(422, {"error": {"code": "idempotency_key_reused", "message": "Key reused with another body.",
                                        "fields": {}}}, {})]
    with pytest.raises(ServerError) as info:
        CsmClient(fake_csm.url, TOKEN, "acme").report("prod", "server", [])
    assert info.value.status == 422 and info.value.code == "idempotency_key_reused"
