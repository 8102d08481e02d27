"""/metrics: who may scrape it, and that the numbers an operator alerts on move with real work — an API report
accepted and ingested by a real Celery worker, a real Redis queue, several processes in multiprocess mode."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from alerts import services
from audit.context import AuditContext
from journal.models import JournalHead
from snapshots.models import ReportOutcome
from tenants.choices import Role
from tests.alerts.conftest import receiver  # noqa: F401 - the local webhook receiver fixture
from tests.conftest import wait_for
from tests.policies.helpers import ingest, make_env
from tests.snapshots.conftest import fp, server_report

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "metrics-scrape-token-0123456789"


def samples(text: str) -> dict:
    """{(sample name, frozenset of labels): value} of a Prometheus text exposition."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(text: str, name: str, **labels) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(client=None, **headers) -> str:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def scrape_once_moved(before: str, name: str, **labels) -> str:
    """The first scrape in which ``name`` has grown since ``before`` (a worker counts after its commit)."""

    def moved():
        text = scrape()
        return text if value(text, name, **labels) > value(before, name, **labels) else None

    return wait_for(moved, what=f"{name} to move")


@pytest.fixture
def token_only(settings):
    """Scraping by token only: no address is trusted."""
    settings.CSM_METRICS_TOKEN = TOKEN
    settings.CSM_METRICS_ALLOWED_NETWORKS = []
    return settings


@pytest.fixture
def agent(api, org, token_for):
    client = api(token=token_for(org, Role.SNAPSHOTTER))
    assert client.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    return client


def put_report(client, body, request_id=None):
    headers = {"HTTP_X_REQUEST_ID": request_id} if request_id else {}
    return client.put("/api/v2/environments/acme/prod/report/server", data=json.dumps(body).encode(),
                      content_type="application/json", **headers)


@pytest.mark.django_db
def test_the_token_opens_metrics_and_anything_else_is_a_404(token_only):
    assert "csm_http_requests_total" in scrape()
    client = Client()
    refused = [client.get("/metrics"),
               client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token"),
               client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}"),
               client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")]
    assert [response.status_code for response in refused] == [404] * 4
    # The same 404 as any unknown URL: nothing says a metrics endpoint exists here.
    assert refused[0].content == client.get("/no-such-page").content
    assert b"csm_" not in refused[0].content


@pytest.mark.django_db
def test_no_token_configured_means_no_bearer_is_accepted(settings):
    settings.CSM_METRICS_TOKEN = ""
    settings.CSM_METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_loopback_may_scrape_by_default_over_real_http(live_server):
    assert settings.CSM_METRICS_ALLOWED_NETWORKS == ["127.0.0.0/8", "::1/128"]
    with urllib.request.urlopen(live_server.url + "/metrics") as response:
        body = response.read().decode()
    assert response.status == 200
    assert "# TYPE csm_http_requests_total counter" in body


@pytest.mark.django_db
def test_allowed_networks_decide_by_client_address(settings):
    settings.CSM_METRICS_TOKEN = ""
    settings.CSM_METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16", "2001:db8::/32"]
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.0.1").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404
    # X-Forwarded-For is a client's claim unless the operator trusts a proxy to set it.
    spoofed = client.get("/metrics", REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR="10.20.3.4")
    assert spoofed.status_code == 404
    settings.CSM_TRUST_X_FORWARDED_FOR = True
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4", HTTP_X_FORWARDED_FOR="192.0.2.9").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_report_accepted_and_ingested_by_a_real_worker_moves_the_counters(token_only, agent, celery_worker):
    before = scrape()
    response = put_report(agent, server_report(fp(1), fp(2)))
    assert response.status_code == 201
    report_id = response.json()["id"]
    wait_for(lambda: ReportOutcome.objects.filter(report_id=report_id).exists(), what="ingest")
    # The counters move after the worker's commit: wait for the scrape that shows it.
    after = scrape_once_moved(before, "csm_ingest_lag_seconds_count")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("csm_reports_accepted_total", type="server") == 1
    assert moved("csm_reports_ingested_total", outcome="snapshot") == 1
    assert moved("csm_ingest_lag_seconds_count") == 1
    assert moved("csm_reports_failed_total", error="DatabaseError") == 0
    # The request is labelled with the URL pattern that answered it, not with its path.
    put_routes = {dict(labels)["route"] for (name, labels) in samples(after)
                  if name == "csm_http_requests_total" and dict(labels)["method"] == "PUT"}
    report_routes = [route for route in put_routes if "report" in route]
    assert len(report_routes) == 1, put_routes
    assert report_routes == ["api/v2/environments/<org>/<env>/report/<report_type>"]
    assert moved("csm_http_requests_total", method="PUT", route=report_routes[0], status="201") == 1
    assert moved("csm_http_request_duration_seconds_count", method="PUT", route=report_routes[0]) == 1
    labels_everywhere = " ".join(route for (_, labels) in samples(after) for _, route in labels)
    assert "acme" not in labels_everywhere and "prod" not in labels_everywhere


@pytest.mark.django_db
def test_pending_reports_and_journal_size_are_read_at_scrape_time(token_only, agent):
    assert value(scrape(), "csm_reports_pending") == 0
    put_report(agent, server_report(fp(1)))
    put_report(agent, server_report(fp(2)))
    text = scrape()  # no worker runs here: both wait in the outbox
    assert value(text, "csm_reports_pending") == 2
    leaves = sum(JournalHead.objects.values_list("last_index", flat=True))
    assert leaves > 0 and value(text, "csm_journal_leaves") == leaves
    # Nothing has published a checkpoint yet: the oldest leaf has been waiting for one.
    assert value(text, "csm_journal_checkpoint_age_seconds") >= 0


@pytest.mark.django_db
def test_queue_depth_is_the_length_of_the_real_redis_list(token_only):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("reports", "alerts")
    broker.rpush("reports", b"one", b"two", b"three")
    try:
        text = scrape()
    finally:
        broker.delete("reports")
    assert value(text, "csm_celery_queue_depth", queue="reports") == 3
    assert value(text, "csm_celery_queue_depth", queue="alerts") == 0
    assert {dict(labels)["queue"] for (name, labels) in samples(text) if name == "csm_celery_queue_depth"} == {
        "celery", "ingest", "alerts", "reports"}


@pytest.mark.django_db
def test_no_queue_depth_without_a_redis_broker(token_only):
    token_only.CELERY_BROKER_URL = ""
    assert "csm_celery_queue_depth" not in scrape()


def _run(code: str, multiproc_dir: Path) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "csm.test_settings", "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}",
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "CSM_METRICS_TOKEN": TOKEN}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.django_db(transaction=True)
def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """Two processes (two gunicorn workers, or a web process and a worker) count; a third serves the sum."""
    count = "from csm.metrics import SWEEPER_RESENDS, INGEST_LAG\nSWEEPER_RESENDS.inc({n})\nINGEST_LAG.observe(1.5)\n"
    _run(count.format(n=2), tmp_path)
    _run(count.format(n=3), tmp_path)
    assert list(tmp_path.glob("*.db")), "prometheus_client wrote no files in PROMETHEUS_MULTIPROC_DIR"
    text = _run("from django.test import Client\n"
                f"print(Client().get('/metrics', HTTP_AUTHORIZATION='Bearer {TOKEN}').content.decode())", tmp_path)
    assert value(text, "csm_sweeper_resends_total") == 5
    assert value(text, "csm_ingest_lag_seconds_count") == 2
    assert value(text, "csm_ingest_lag_seconds_sum") == 3.0
    assert "csm_reports_pending" in text  # the scrape-time gauges come once, from the scraping process


@pytest.mark.django_db(transaction=True)
def test_an_alert_delivered_by_a_real_worker_is_counted_with_its_latency(
        token_only, org, receiver, celery_worker):  # noqa: F811 (receiver: the fixture imported above)
    before = scrape()
    env = make_env(org)
    services.create_action(AuditContext.system("test"), org, "hook", "webhook", url=receiver.url,
                           triggers=["ON_STARTED_ARTIFACT"])
    ingest(env, {"web:1": fp(1)})
    receiver.wait_for(1)
    after = scrape_once_moved(before, "csm_alert_deliveries_total", outcome="delivered")
    assert value(after, "csm_alert_deliveries_total", outcome="delivered") - value(
        before, "csm_alert_deliveries_total", outcome="delivered") == 1
    assert value(after, "csm_alert_delivery_seconds_count", outcome="delivered") - value(
        before, "csm_alert_delivery_seconds_count", outcome="delivered") == 1
    assert value(after, "csm_alert_delivery_seconds_sum", outcome="delivered") > value(
        before, "csm_alert_delivery_seconds_sum", outcome="delivered")


@pytest.mark.django_db(transaction=True)
def test_an_audit_report_generated_by_a_real_worker_is_timed(token_only, org, api, token_for, celery_worker):
    before = value(scrape(), "csm_report_generation_seconds_count", result="done")
    client = api(token=token_for(org, Role.READER))
    response = client.post(f"/api/v2/orgs/{org.slug}/reports", {"kind": "org", "from": "2000-01-01",
                                                                "to": "2100-01-01"}, format="json")
    assert response.status_code == 202
    wait_for(lambda: value(scrape(), "csm_report_generation_seconds_count", result="done") > before,
             what="the report generated")
    assert value(scrape(), "csm_report_generation_seconds_count", result="done") == before + 1


@pytest.mark.django_db
def test_the_grafana_dashboard_plots_only_metrics_csm_serves(token_only, agent):
    """deploy/grafana/csm-dashboard.json: every csm_* series it queries is one /metrics serves (a renamed metric
    would leave an empty panel)."""
    import re

    put_report(agent, server_report(fp(1)))
    served = {name for name, _ in samples(scrape())}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "csm-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bcsm_[a-z_]+", target["expr"])}
    assert queried and len(dashboard["panels"]) >= 10
    # Counters and histograms without a sample yet in this process still declare their families.
    families = {family.name for family in text_string_to_metric_families(scrape())}
    missing = sorted(name for name in queried if name not in served
                     and name.removesuffix("_total").removesuffix("_bucket") not in families)
    assert not missing, missing
