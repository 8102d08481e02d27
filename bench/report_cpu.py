"""CPU per K8S report, profiled: what accepting one report (web) and ingesting it (worker) cost in CPU.

In-process, no web server or worker: the PUT goes through Django's test client (the whole request path:
middleware, token authentication, reading and validating the body, the durable ``Report`` row, the
``report.received`` audit event and its journal leaf, publishing the Celery task to the bench's own
redis-server, rendering the answer), then ``snapshots.services.ingest.ingest_report(report_id)`` runs as
the worker would (reading the body back, canonicalizing, diffing against the open entries, the outcome, a
snapshot when something changed, the after-snapshot hooks).

Bodies come from bench/capacity.py's ``Cluster``: kosli-shaped K8S reports of 50-500 pods, ``--churn`` (1%)
of the pods replaced per report (1 replacement in 20 a rollout, which makes a snapshot), ``--quiet`` (10%)
of the environments never changing — the same mix as the capacity run, with the same seed. Every
environment's first report (its initial snapshot) is a warm-up and is not counted.

CPU time of this process (``time.process_time``: user + system, so the database's own CPU is not in it)
per report, accept and ingest separately: median and mean over ``--envs`` x ``--rounds`` reports. Then,
unless ``--no-profile``, a cProfile top-30 (cumulative and tottime) of accept and of ingest over
``--profile-rounds`` more rounds (profiling inflates the times; the measured figures come from the
unprofiled rounds; the profiler's clock is process_time too, so time spent waiting for PostgreSQL is not
counted).

    .venv/bin/python bench/report_cpu.py                    # --envs 30 --rounds 10 --profile-rounds 3
    .venv/bin/python bench/report_cpu.py --no-profile --json /tmp/cpu.json

Its own database (``csm_bench_report_cpu`` unless CSM_BENCH_DB says otherwise) and redis-server
(bench/snapshots_common.py). Figures: docs/benchmarks.md, "Capacity" / "CPU per report, profiled".
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_report_cpu")

from capacity import Cluster  # noqa: E402  (capacity sets CSM_BENCH_DB only if unset: ours wins)
from snapshots_common import SERVER_ENV, make_org, setup  # noqa: E402

SERVER_ENV["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=10, help="measured reports per environment")
    parser.add_argument("--profile-rounds", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--quiet", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--dump", help="also write the profiles to DUMP-accept.pstats / DUMP-ingest.pstats")
    args = parser.parse_args()
    setup()

    from django.test import Client

    from audit.context import AuditContext
    from snapshots.models import Report, ReportOutcome
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report

    org, token = make_org("cpu")
    ctx = AuditContext.system("bench")
    rng = random.Random(args.seed)
    clusters = [Cluster(i, rng, rng.random() < args.quiet, args.churn) for i in range(args.envs)]
    for i in range(args.envs):
        create_or_update_environment(ctx, org, f"k8s-{i}", "K8S")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    generation = [0] * args.envs

    def one(i: int, profiles=None) -> tuple[float, float, str]:
        """Report environment i once: (accept CPU s, ingest CPU s, outcome status)."""
        cluster = clusters[i]
        if generation[i]:
            cluster.step()
        generation[i] += 1
        body = cluster.body()
        url = f"/api/v2/environments/{org.slug}/k8s-{i}/report/K8S"
        headers = {"HTTP_IDEMPOTENCY_KEY": f"k8s-{i}-{generation[i]}"}
        if profiles:
            profiles[0].enable()
        started = time.process_time()
        response = client.put(url, body, content_type="application/json", **headers)
        accepted = time.process_time()
        if profiles:
            profiles[0].disable()
        assert response.status_code == 201, (response.status_code, response.content[:300])
        report_id = response.json()["id"]
        if profiles:
            profiles[1].enable()
        begun = time.process_time()
        outcome = ingest_report(report_id)
        ingested = time.process_time()
        if profiles:
            profiles[1].disable()
        return accepted - started, ingested - begun, outcome.status

    for i in range(args.envs):  # warm-up: every environment's initial snapshot
        one(i)
    accept_s, ingest_s, statuses = [], [], {}
    for _ in range(args.rounds):
        for i in range(args.envs):
            a, b, status = one(i)
            accept_s.append(a)
            ingest_s.append(b)
            statuses[status] = statuses.get(status, 0) + 1
    pods = [len(c.pods) for c in clusters]
    size = statistics.mean(len(c.body()) for c in clusters) / 1024
    figures = {
        "reports": len(accept_s), "statuses": statuses, "pods_mean": statistics.mean(pods), "body_kib_mean": size,
        "accept_ms_median": 1000 * statistics.median(accept_s), "accept_ms_mean": 1000 * statistics.mean(accept_s),
        "ingest_ms_median": 1000 * statistics.median(ingest_s), "ingest_ms_mean": 1000 * statistics.mean(ingest_s),
    }
    print(f"CPU per K8S report (in-process, time.process_time), {figures['reports']} reports over {args.envs} "
          f"environments: {figures['pods_mean']:.0f} pods / {size:.0f} KiB on average; outcomes {statuses}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"   accept  median {figures['accept_ms_median']:6.2f} ms   mean {figures['accept_ms_mean']:6.2f} ms")
    print(f"   ingest  median {figures['ingest_ms_median']:6.2f} ms   mean {figures['ingest_ms_mean']:6.2f} ms")
    print(f"   total   median {figures['accept_ms_median'] + figures['ingest_ms_median']:6.2f} ms   "
          f"mean {figures['accept_ms_mean'] + figures['ingest_ms_mean']:6.2f} ms")
    assert Report.objects.count() == ReportOutcome.objects.count()

    if not args.no_profile:
        # CPU time, not wall time: waiting for PostgreSQL (or for the lead's tests on the same cores) is not cost.
        profiles = (cProfile.Profile(time.process_time), cProfile.Profile(time.process_time))
        for _ in range(args.profile_rounds):
            for i in range(args.envs):
                one(i, profiles)
        for name, profile in zip(("accept", "ingest"), profiles, strict=True):
            if args.dump:
                profile.dump_stats(f"{args.dump}-{name}.pstats")
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                stats = pstats.Stats(profile, stream=out)
                stats.sort_stats(order).print_stats(args.top)
                print(f"\n== {name}: top {args.top} by {order} over {args.profile_rounds * args.envs} reports")
                print("\n".join(line for line in out.getvalue().splitlines()[5:] if line.strip()))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
