"""Alert latency: from a report accepted by the API to its webhook received, with a real web server
(gunicorn), a real Celery worker and a real local webhook receiver (an http.server thread here).

Set-up (dedicated database ``csm_bench_alerts``, a redis-server of its own — or ``CSM_BENCH_REDIS`` with the
DBs in ``CSM_BENCH_REDIS_DBS``, see ``snapshots_common``): an org, a server environment with a
policy attached (provenance required, so every snapshot is evaluated for real), and a webhook action
listening to ``ON_STARTED_ARTIFACT``. Then, ``--changes`` times (default 250), one change at a time:
PUT a report in which one artifact changed version, note when the API answered, and wait for the
signed webhook of that start to arrive (its signature is verified).

Prints p50 / p95 / p99 of

* alert latency: report accepted → webhook received (target: p95 < 1 s), next to
* ingest alone: report accepted → snapshot committed (``ReportOutcome.finished_at``), the baseline;
  the difference is evaluation, alert creation, the delivery task and the HTTP request.

With ``--advisories N``, the latency of a new advisory instead: an org with a server environment where
``--artifacts`` (20) artifacts run, each with the cyclonedx-py SBOM of ``tests/vulns/fixtures/sbom/
python-venv.cdx.json`` (Jinja2 2.10 among others) attested through the real API under its own fingerprint
and indexed by the worker, and a webhook action listening to ``ON_NEW_VULNERABILITY_AFFECTS_RUNNING``.
Then N times, one at a time: write one new OSV record (a fresh id, PyPI jinja2 < 2.10.1, CVSS 3.1 high)
to a fresh directory and run ``manage.py import_vulns DIR`` as a subprocess, as an operator would — or,
with ``--via sync``, add it to the one directory the worker's ``CSM_VULN_SOURCES`` names and send the
periodic sync task (``vulns.sync_vuln_sources``, the same ``osv.import_sources`` inside the worker) —
and wait for the signed webhook naming that record. "Committed" is ``Advisory.imported_at``, written
inside the import's transaction just before it commits (so the latency reported is, if anything, a
little high).

Prints p50 / p95 / p99 of

* alert latency: advisory committed → webhook received (target: within a second), next to
* the import alone: command started (or sync task sent) → advisory committed (the baseline: process
  start-up or the task's wait, reading and storing the record), and the steps in between: committed → matches committed
  (``VulnerabilityMatch.matched_at``), → alert raised (``Delivery.created_at``), → the worker's HTTP
  request started (``DeliveryAttempt.started_at``), → received.

Usage (from the project root):

    .venv/bin/python bench/alerts_latency.py [--changes 250]
    .venv/bin/python bench/alerts_latency.py --advisories 30 [--artifacts 20] [--via command|sync]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("CSM_BENCH_DB", "csm_bench_alerts")

import snapshots_common as common  # noqa: E402

common.SERVER_ENV.update({
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
                keys = event_keys(json.loads(body))
                self.send_response(204)
                self.end_headers()
                with receiver.cond:
                    for key in keys:
                        receiver.arrivals.setdefault(key, arrived)
                        receiver.headers[key] = {k.lower(): v for k, v in self.headers.items()}
                        receiver.bodies[key] = body
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


def event_keys(event: dict) -> list[str]:
    """What a webhook is waited for by: the artifact's fingerprint (an artifact's alert), the OSV ids of
    the vulnerabilities it names (ON_NEW_VULNERABILITY_AFFECTS_RUNNING)."""
    keys = [event["artifact"]["fingerprint"]] if event.get("artifact") else []
    return keys + [osv_id for vulnerability in event.get("vulnerabilities") or []
                   for osv_id in vulnerability["osv_ids"]]


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=250)
    parser.add_argument("--advisories", type=int, default=0,
                        help="measure a new advisory's alert instead: this many imports, one at a time")
    parser.add_argument("--artifacts", type=int, default=20, help="running artifacts with an SBOM (--advisories)")
    parser.add_argument("--via", choices=["command", "sync"], default="command",
                        help="--advisories: run manage.py import_vulns DIR (command), or send the periodic sync task "
                             "to the worker with the directory in CSM_VULN_SOURCES (sync)")
    args = parser.parse_args()

    common.setup()
    if args.advisories:
        advisory_latency(args.advisories, args.artifacts, args.via)
    else:
        report_latency(args.changes)


def report_latency(changes: int):
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
        for version in range(2, changes + 2):
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


SBOM = common.ROOT / "tests/vulns/fixtures/sbom/python-venv.cdx.json"  # cyclonedx-py: Jinja2 2.10 among others
CVSS_HIGH = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 8.1


def osv_record(osv_id: str) -> dict:
    """A new advisory in the OSV shape, as a PyPI advisory database publishes one."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "schema_version": "1.6.0", "id": osv_id, "published": now, "modified": now,
        "summary": "Jinja2 sandbox escape (benchmark record)",
        "details": "Generated by bench/alerts_latency.py: Jinja2 before 2.10.1 lets a template escape the sandbox.",
        "severity": [{"type": "CVSS_V3", "score": CVSS_HIGH}],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "jinja2", "purl": "pkg:pypi/jinja2"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.10.1"}]}]}],
        "references": [{"type": "WEB", "url": "https://example.com/advisories/" + osv_id}],
    }


def run_import(directory: Path) -> tuple[float, float]:
    """``manage.py import_vulns DIR`` as a subprocess (the operator's command); (started, returned)."""
    started = time.time()
    done = subprocess.run([str(common.ROOT / ".venv/bin/python"), "manage.py", "import_vulns", str(directory)],
                          cwd=common.ROOT, env={**os.environ, **common.SERVER_ENV}, capture_output=True, text=True)
    returned = time.time()
    if done.returncode != 0 or "1 created" not in done.stdout:
        raise SystemExit(f"import_vulns failed ({done.returncode}): {done.stdout} {done.stderr}")
    return started, returned


def advisory_latency(advisories: int, artifacts: int, via: str):
    import requests

    from alerts import services as alert_services
    from alerts import signing
    from alerts.models import Delivery, DeliveryAttempt
    from audit.context import AuditContext
    from snapshots.models import ReportOutcome
    from snapshots.services.environments import create_or_update_environment
    from vulns.models import Advisory, ComponentPackage, VulnerabilityMatch
    from vulns.tasks import sync_vuln_sources

    ctx = AuditContext.system("bench")
    org, token = common.make_org("bench")
    create_or_update_environment(ctx, org, "prod", "server")
    fingerprints = [f"{0x5B0000 + i:064x}" for i in range(artifacts)]
    receiver = Receiver()
    sbom = SBOM.read_bytes()
    steps = {name: [] for name in ("import", "alert", "matched", "raised", "picked", "sent", "command", "returned")}
    workdir = Path(tempfile.mkdtemp(prefix="csm-bench-advisories-"))
    feed = workdir / "feed"  # --via sync: the worker's one source; each round adds a record to it
    feed.mkdir()
    if via == "sync":
        common.SERVER_ENV["CSM_VULN_SOURCES"] = str(feed)
    with common.Web() as web, common.Worker():
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}"})
        api = f"{web.url}/api/v2"
        session.put(f"{api}/flows/bench", json={"name": "backend", "description": "", "visibility": "private"},
                    timeout=30).raise_for_status()
        session.put(f"{api}/trails/bench/backend", data={"data_json": json.dumps(
            {"name": "build-1", "description": "", "user_data": {}})}, timeout=30).raise_for_status()
        for i, fingerprint in enumerate(fingerprints):  # kosli attest sbom, once per image
            data = {"attestation_name": f"sbom-{i}", "artifact_fingerprint": fingerprint}
            session.post(f"{api}/attestations/bench/backend/trail/build-1/sbom", timeout=30,
                         data={"data_json": json.dumps(data)},
                         files={"attachment_file": ("bom.cdx.json", sbom)}).raise_for_status()
        common.wait_until(lambda: ComponentPackage.objects.filter(org=org).values("artifact_fingerprint").distinct()
                          .count() == artifacts, 120, "the worker to index every SBOM")
        report = json.dumps({"artifacts": [{"digests": {f"svc-{i}:1": fp}, "creationTimestamp": 1_700_000_000}
                                           for i, fp in enumerate(fingerprints)]})
        response = session.put(f"{api}/environments/bench/prod/report/server", data=report, timeout=30,
                               headers={"Content-Type": "application/json"})
        response.raise_for_status()
        common.wait_until(lambda: ReportOutcome.objects.filter(report_id=response.json()["id"]).exists(), 60,
                          "the report outcome")
        _, secret = alert_services.create_action(ctx, org, "security", "webhook", url=receiver.url,
                                                 triggers=["ON_NEW_VULNERABILITY_AFFECTS_RUNNING"])
        for n in range(advisories + 2):  # the first two warm up, not measured
            osv_id = f"CSMBENCH-{os.getpid()}-{n:04d}"
            directory = feed if via == "sync" else workdir / f"{n:04d}"
            directory.mkdir(exist_ok=True)
            (directory / f"{osv_id}.json").write_text(json.dumps(osv_record(osv_id)))
            if via == "sync":
                started = time.time()
                sync_vuln_sources.delay()
            else:
                started, returned = run_import(directory)
            arrived = receiver.wait(osv_id)
            if not signing.verify(secret, receiver.headers[osv_id], receiver.bodies[osv_id]):
                raise SystemExit("bad webhook signature")
            event = json.loads(receiver.bodies[osv_id])
            alerted = {a["fingerprint"] for v in event["vulnerabilities"] for a in v["artifacts"]}
            if alerted != set(fingerprints):
                raise SystemExit(f"the alert names {len(alerted)} of the {artifacts} running artifacts")
            advisory = Advisory.objects.get(osv_id=osv_id)
            matched = max(VulnerabilityMatch.objects.filter(advisory=advisory).values_list("matched_at", flat=True))
            delivery = common.wait_until(lambda d=advisory.group_id: Delivery.objects.filter(
                event_type="ON_NEW_VULNERABILITY_AFFECTS_RUNNING", body__contains=f'"{d}"',
                status="delivered").first(), 30, "the delivery to be marked delivered")
            attempt = DeliveryAttempt.objects.filter(delivery=delivery).order_by("number").last()
            if n < 2:
                continue
            committed = advisory.imported_at.timestamp()
            steps["import"].append(committed - started)
            steps["alert"].append(arrived - committed)
            steps["matched"].append(matched.timestamp() - committed)
            steps["raised"].append(delivery.created_at.timestamp() - matched.timestamp())
            steps["picked"].append(attempt.started_at.timestamp() - delivery.created_at.timestamp())
            steps["sent"].append(arrived - attempt.started_at.timestamp())
            if via == "command":
                steps["command"].append(returned - started)
                steps["returned"].append(arrived - returned)
    shutil.rmtree(workdir, ignore_errors=True)
    first = "command start" if via == "command" else "sync task sent"
    rows = [
        (f"import alone ({first} → committed)", "import"),
        ("alert (committed → webhook received)", "alert"),
        ("  committed → matches committed", "matched"),
        ("  matches → alert raised", "raised"),
        ("  raised → worker's request started", "picked"),
        ("  request started → received", "sent"),
    ]
    if via == "command":
        rows += [("whole command (start → returned)", "command"),
                 ("webhook received - command returned", "returned")]
    how = "import_vulns run" if via == "command" else "sync task (the worker imports its directory source)"
    print(f"advisories measured: {len(steps['alert'])} (one new OSV record per {how}, matching "
          f"{artifacts} running artifacts; one webhook each)")
    print(f"{'':44} {'p50':>8} {'p95':>8} {'p99':>8}")
    for label, key in rows:
        p50, p95, p99 = percentiles([v * 1000 for v in steps[key]])
        print(f"{label:44} {p50:7.0f}ms {p95:7.0f}ms {p99:7.0f}ms")
    a95 = percentiles(steps["alert"])[1] * 1000
    i95 = percentiles(steps["import"])[1] * 1000
    print(f"alert / import alone at p95: {common.ratio(a95, i95)}; target committed → webhook within 1 s at p95: "
          f"{'met' if a95 < 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
