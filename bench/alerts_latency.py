"""Alert latency: from a report accepted by the API to its webhook received, with a real web server
(gunicorn), a real Celery worker and a real local webhook receiver (an http.server thread here).

Set-up (dedicated database ``csm_bench_alerts``, Redis DBs 7/8): an org, a server environment with a
policy attached (provenance required, so every snapshot is evaluated for real), and a webhook action
listening to ``ON_STARTED_ARTIFACT``. Then, ``--changes`` times (default 250), one change at a time:
PUT a report in which one artifact changed version, note when the API answered, and wait for the
signed webhook of that start to arrive (its signature is verified).

Prints p50 / p95 / p99 of

* alert latency: report accepted → webhook received (target: p95 < 1 s), next to
* ingest alone: report accepted → snapshot committed (``ReportOutcome.finished_at``), the baseline;
  the difference is evaluation, alert creation, the delivery task and the HTTP request.

Usage (from the project root):

    .venv/bin/python bench/alerts_latency.py [--changes 250]
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("CSM_BENCH_DB", "csm_bench_alerts")

import snapshots_common as common  # noqa: E402

common.SERVER_ENV.update({
    "CELERY_BROKER_URL": f"{common.REDIS}/7",
    "CACHE_URL": f"{common.REDIS}/8",
    "CSM_WEBHOOK_ALLOW_PRIVATE": "1",  # the receiver runs on 127.0.0.1
})

POLICY = "_schema: https://kosli.com/schemas/policy/environment/v1\nartifacts:\n  provenance:\n    required: true\n"


class Receiver:
    def __init__(self):
        self.arrivals: dict[str, float] = {}
        self.headers: dict[str, dict] = {}
        self.bodies: dict[str, bytes] = {}
        self.cond = threading.Condition()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                fingerprint = json.loads(body)["artifact"]["fingerprint"]
                self.send_response(204)
                self.end_headers()
                with receiver.cond:
                    receiver.arrivals.setdefault(fingerprint, arrived)
                    receiver.headers[fingerprint] = {k.lower(): v for k, v in self.headers.items()}
                    receiver.bodies[fingerprint] = body
                    receiver.cond.notify_all()

            def log_message(self, *args):
                pass

        return Handler

    def wait(self, fingerprint: str, timeout: float = 30.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: fingerprint in self.arrivals, timeout=timeout):
                from alerts.models import Delivery
                from snapshots.models import ReportOutcome

                recent = list(Delivery.objects.order_by("-id").values_list("status", "description")[:3])
                outcomes = list(ReportOutcome.objects.order_by("-id").values_list("status", flat=True)[:3])
                raise SystemExit(f"no webhook for {fingerprint.lstrip('0')} within {timeout} s; last deliveries "
                                 f"{recent}, last report outcomes {outcomes}")
            return self.arrivals[fingerprint]


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=250)
    args = parser.parse_args()

    common.setup()
    import requests

    from alerts import services as alert_services
    from alerts import signing
    from audit.context import AuditContext
    from policies import services as policy_services
    from snapshots.models import ReportOutcome
    from snapshots.services.environments import create_or_update_environment

    ctx = AuditContext.system("bench")
    org, token = common.make_org("bench")
    env, _ = create_or_update_environment(ctx, org, "prod", "server")
    policy_services.save_policy(ctx, org, "needs-provenance", POLICY)
    policy_services.attach_policies(ctx, org, env, ["needs-provenance"])
    receiver = Receiver()
    _, secret = alert_services.create_action(ctx, org, "bench-hook", "webhook", url=receiver.url,
                                             triggers=["ON_STARTED_ARTIFACT"])
    stable = {f"svc-{i}:1": f"{i + 1:064x}" for i in range(20)}  # 20 services that keep running

    def report(version: int) -> bytes:
        artifacts = dict(stable)
        artifacts[f"web:{version}"] = f"{0xABC0000 + version:064x}"
        return json.dumps({"artifacts": [{"digests": {name: fp}, "creationTimestamp": 1_700_000_000}
                                         for name, fp in artifacts.items()]}).encode()

    alert_ms, ingest_ms = [], []
    with common.Web() as web, common.Worker():
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        url = f"{web.url}/api/v2/environments/bench/prod/report/server"
        # warm-up: first snapshot (every artifact starts) and one change, not measured
        for version in (0, 1):
            session.put(url, data=report(version), timeout=30).raise_for_status()
            receiver.wait(f"{0xABC0000 + version:064x}")
        for version in range(2, args.changes + 2):
            fingerprint = f"{0xABC0000 + version:064x}"
            response = session.put(url, data=report(version), timeout=30)
            accepted = time.time()
            response.raise_for_status()
            arrived = receiver.wait(fingerprint)
            if not signing.verify(secret, receiver.headers[fingerprint], receiver.bodies[fingerprint]):
                raise SystemExit("bad webhook signature")
            report_id = response.json()["id"]
            outcome = common.wait_until(
                lambda rid=report_id: ReportOutcome.objects.filter(report_id=rid).first(), 30, "the report outcome")
            alert_ms.append((arrived - accepted) * 1000)
            ingest_ms.append((outcome.finished_at.timestamp() - accepted) * 1000)
            time.sleep(0.05)  # agents report at intervals, not back to back
    a50, a95, a99 = percentiles(alert_ms)
    i50, i95, i99 = percentiles(ingest_ms)
    print(f"changes measured: {len(alert_ms)} (one artifact started + one exited per report, policy evaluated)")
    print(f"{'':38} {'p50':>8} {'p95':>8} {'p99':>8}")
    print(f"{'ingest alone (accepted → committed)':38} {i50:7.0f}ms {i95:7.0f}ms {i99:7.0f}ms")
    print(f"{'alert (accepted → webhook received)':38} {a50:7.0f}ms {a95:7.0f}ms {a99:7.0f}ms")
    print(f"alert / ingest at p95: {common.ratio(a95, i95)}; target p95 < 1000 ms: "
          f"{'met' if a95 < 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
