"""CSM_LOG_FORMAT=json: one JSON object per log line, and the request id of an API report carried into the Celery
worker that ingests it, so one grep finds the request and its ingest."""

import io
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings

from csm.logs import JsonFormatter, LogContextFilter, log_context
from snapshots.models import ReportOutcome
from tenants.choices import Role
from tests.conftest import wait_for
from tests.snapshots.conftest import fp, server_report

ROOT = Path(__file__).resolve().parent.parent


class Captured(logging.Handler):
    """The records of a logger, formatted as CSM_LOG_FORMAT=json formats them, with the thread they came from."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.addFilter(LogContextFilter())
        self.lines: list[tuple[str, dict]] = []

    def emit(self, record):
        self.lines.append((record.threadName, json.loads(self.format(record))))


@pytest.fixture
def captured():
    """Capture INFO and above of the loggers an ingest writes to, whatever level the worker set."""
    handler = Captured()
    loggers = [logging.getLogger(name) for name in ("snapshots", "celery.app.trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_json_lines_parse_and_carry_the_context():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("csm.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_context(request_id="req-1", report_id=42, org="acme"):
            logger.warning("report %s of %s is \"odd\"\nsecond line", 42, "prod")
        try:
            raise ValueError("broken body")
        except ValueError:
            logger.exception("ingest failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["message"] == 'report 42 of prod is "odd"\nsecond line'
    assert (first["level"], first["logger"], first["request_id"], first["report_id"], first["org"]) == (
        "WARNING", "csm.test.json", "req-1", 42, "acme")
    assert first["time"].endswith("+00:00")
    # Outside the block the context is gone again.
    assert second["request_id"] == "" and "report_id" not in second and "org" not in second
    assert second["level"] == "ERROR" and "ValueError: broken body" in second["exception"]


def _python(code: str, **env_extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "csm.test_settings",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}",
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, **env_extra}
    return subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


LOG_SOME = """
import logging
log = logging.getLogger("csm.smoke")
log.info("hello %s", "operator")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it broke")
"""


def test_the_setting_switches_every_line_to_json():
    result = _python(LOG_SOME, CSM_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    hello, broke = [line for line in lines if line["logger"] == "csm.smoke"]
    assert hello["message"] == "hello operator" and hello["level"] == "INFO"
    assert "ZeroDivisionError" in broke["exception"]
    # Default: today's plain lines.
    plain = _python(LOG_SOME)
    assert " INFO csm.smoke hello operator" in plain.stderr
    assert not plain.stderr.lstrip().startswith("{")


def test_an_unknown_log_format_stops_the_process():
    result = _python("", CSM_LOG_FORMAT="xml")
    assert result.returncode != 0 and "CSM_LOG_FORMAT must be plain or json" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_the_ingest_with_the_request_id_of_the_api_call(api, org, token_for, captured,
                                                                         celery_worker):
    agent = api(token=token_for(org, Role.SNAPSHOTTER))
    assert agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    response = agent.put("/api/v2/environments/acme/prod/report/server",
                         data=json.dumps(server_report(fp(1), fp(2))).encode(), content_type="application/json",
                         HTTP_X_REQUEST_ID="agent-req-7f3a")
    assert response.status_code == 201 and response["X-Request-ID"] == "agent-req-7f3a"
    report_id = response.json()["id"]
    wait_for(lambda: ReportOutcome.objects.filter(report_id=report_id).exists(), what="ingest")

    def ingest_lines():
        return [(thread, line) for thread, line in captured.lines if line.get("report_id") == report_id]

    lines = wait_for(lambda: [line for _, line in ingest_lines() if line["logger"] == "snapshots.services.ingest"],
                     what="the ingest log line")
    assert lines[0]["request_id"] == "agent-req-7f3a"
    assert lines[0]["org"] == "acme"
    assert f"report {report_id} of prod ingested: snapshot" in lines[0]["message"]
    assert {thread for thread, _ in ingest_lines()} != {threading.current_thread().name}  # the worker's thread
    # The task itself ran with the request's id (the message header): Celery's own line of it says so. The
    # worker may first drain other tests' leftover ingest messages (reports long gone, no request id), so the
    # line of this report's task is the one that carries an id at all.
    done = wait_for(lambda: [line for _, line in captured.lines if line["logger"] == "celery.app.trace"
                             and "snapshots.ingest_report" in line["message"] and "succeeded" in line["message"]
                             and "'gone'" not in line["message"]],
                    what="the task's success line")
    assert [line["request_id"] for line in done] == ["agent-req-7f3a"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_writes_json_lines_with_the_request_id(api, org, token_for, tmp_path):
    """The production path: `celery -A csm worker` sets up its own log handlers; with CSM_LOG_FORMAT=json they
    write JSON too, and the ingest of an API report logs that request's id."""
    agent = api(token=token_for(org, Role.SNAPSHOTTER))
    assert agent.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    response = agent.put("/api/v2/environments/acme/prod/report/server",
                         data=json.dumps(server_report(fp(3))).encode(), content_type="application/json",
                         HTTP_X_REQUEST_ID="proc-req-91c2")
    report_id = response.json()["id"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "csm.test_settings", "CSM_LOG_FORMAT": "json",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}",
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    log_file = tmp_path / "worker.log"
    with open(log_file, "w") as stderr:
        worker = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "csm", "worker", "--pool", "solo", "-l", "INFO", "-Q", "ingest",
             "--without-mingle", "--without-gossip", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            wait_for(lambda: ReportOutcome.objects.filter(report_id=report_id).exists(), what="ingest")
            wait_for(lambda: "succeeded" in log_file.read_text(), what="the task's success line")
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert not [line for line in log_file.read_text().splitlines() if line.startswith("[20")], "plain lines left"
    ours = [line for line in lines if line["request_id"] == "proc-req-91c2"]
    ingest_line = next(line for line in ours if line["logger"] == "snapshots.services.ingest")
    assert ingest_line["report_id"] == report_id and ingest_line["org"] == "acme"
    assert any(line["logger"] == "celery.app.trace" and "succeeded" in line["message"] for line in ours)
