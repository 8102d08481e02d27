"""Kubernetes scale limit: one 150,000-pod K8S report (~50 MB of kosli-shaped JSON) through the real API
(gunicorn) and a real Celery worker.

Measures: accept time (PUT answered), end-to-end time until the snapshot is committed, the worker's part,
and the peak memory (VmHWM) of the web worker process and of the Celery worker process. Baseline, in
the same run: ``json.loads`` of the same body plus one plain PostgreSQL COPY of the same entry rows
(the floor). Targets: under 10 s and under 1 GiB each. Then a second, identical report (unchanged →
heartbeat) and one with 1% of the deployments upgraded.

    .venv/bin/python bench/snapshots_k8s_scale.py [--pods 150000] [--pods-per-deployment 50]
"""

import argparse
import hashlib
import json
import time

from snapshots_common import (
    ENTRY_COLUMNS,
    Web,
    Worker,
    copy_seconds,
    entry_rows,
    make_org,
    outcome_ready,
    ratio,
    setup,
    wait_until,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def k8s_report(pods: int, per_deployment: int, version: int = 0, upgraded_every: int = 0) -> bytes:
    """Pods of deployments ``svc-N``: the app image plus an envoy sidecar (two containers per pod)."""
    artifacts = []
    sidecar = sha("envoy:1.29")
    for pod in range(pods):
        deployment = pod // per_deployment
        bump = version if upgraded_every and deployment % upgraded_every == 0 else 0
        digests = {f"ghcr.io/acme/svc-{deployment}:1.{bump}": sha(f"{deployment}.{bump}"), "envoy:v1.29": sidecar}
        artifacts.append({
            "podName": f"svc-{deployment}-7d9f8c6b5-{pod:06x}", "namespace": f"team-{deployment % 40}",
            "digests": digests, "creationTimestamp": 1_764_000_000 + pod % 86400,
            "owners": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"svc-{deployment}-7d9f8c6b5",
                        "uid": f"5c1e{deployment:08x}-0000-4000-8000-000000000000", "controller": True,
                        "blockOwnerDeletion": True}],
        })
    return json.dumps({"artifacts": artifacts, "type": "K8S"}).encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--pods-per-deployment", type=int, default=50)
    args = parser.parse_args()
    setup()
    import requests

    from snapshots.models import Environment, ReportOutcome, SnapshotEntry
    from snapshots.report_bodies import canonicalize_body

    org, token = make_org()
    body = k8s_report(args.pods, args.pods_per_deployment)
    print(f"report: {args.pods:,} pods, {len(body) / 1e6:.1f} MB of JSON")

    # Floor: parse the same JSON + one plain COPY of the same entry rows.
    started = time.perf_counter()
    parsed = json.loads(body)
    parse_s = time.perf_counter() - started
    del parsed
    running = canonicalize_body("K8S", body)
    from django.utils import timezone

    rows = entry_rows(org.pk, 0, running, timezone.now())
    copy_s = copy_seconds(rows, ENTRY_COLUMNS)
    floor = parse_s + copy_s
    print(f"floor: json.loads {parse_s:.2f} s + COPY of {len(rows):,} entry rows {copy_s:.2f} s = {floor:.2f} s")
    del rows, running

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    with Web() as web, Worker() as worker:
        session.put(f"{web.url}/api/v2/environments/bench", json={"name": "cluster", "type": "K8S"}).raise_for_status()
        results = []
        for label, payload in (("first (150k pods new)", body), ("identical (heartbeat)", body),
                               ("1% of deployments upgraded", k8s_report(args.pods, args.pods_per_deployment, 1,
                                                                         100))):
            started = time.perf_counter()
            response = session.put(f"{web.url}/api/v2/environments/bench/cluster/report/K8S", data=payload,
                                   headers={"Content-Type": "application/json"}, timeout=300)
            accepted = time.perf_counter()
            response.raise_for_status()
            report_id = response.json()["id"]
            wait_until(lambda rid=report_id: outcome_ready([rid]), 300, "ingest")
            done = time.perf_counter()
            status = ReportOutcome.objects.get(report_id=report_id).status
            results.append((label, accepted - started, done - started, done - accepted, status))
        web_peak, worker_peak = web.peak_rss_mib(), worker.peak_rss_mib()
    env = Environment.objects.get(name="cluster")
    entries = SnapshotEntry.objects.filter(environment=env).count()
    print(f"\n{'report':32} {'accept s':>9} {'end-to-end s':>13} {'worker s':>9} {'vs floor':>9}  outcome")
    for label, accept_s, total_s, worker_s, status in results:
        print(f"{label:32} {accept_s:9.2f} {total_s:13.2f} {worker_s:9.2f} {ratio(total_s, floor):>9}  {status}")
    print(f"\npeak memory: web worker process {web_peak:.0f} MiB, celery worker {worker_peak:.0f} MiB "
          f"(target < 1024 MiB each)")
    print(f"snapshots: {env.last_snapshot_index}, entry rows in total: {entries:,} "
          f"({env.current_artifact_count:,} artifacts running)")
    first_total = results[0][2]
    verdict = "OK" if first_total < 10 and max(web_peak, worker_peak) < 1024 else "OVER TARGET"
    print(f"target (150k pods < 10 s end to end, < 1 GiB per process): {verdict}")


if __name__ == "__main__":
    main()
