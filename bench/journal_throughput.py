"""Journal append throughput: is ingest capped by the journal of ONE org?

Every changed report appends journal leaves (the snapshot's and its audit event's) under the org's
journal head row lock, held from the first append to commit (journal/services.py ``append_leaf``). Eight
environments of one org therefore share one lock; eight environments of eight orgs share none. The
issue's goal: one org reaches at least 80% of the eight-org throughput.

Set-up: a fresh database of its own (``csm_bench_journal`` unless CSM_BENCH_DB says otherwise), its
own redis-server, a real Celery worker (subprocess) publishing the checkpoints the ingests ask for —
the integrator's tree lock competes as in production — and 8 ingest processes, each calling the real
ingest service (``snapshots.services.ingest.ingest_report``) for the reports of its own environment,
accepted beforehand. Every report replaces ``--churn`` of ``--artifacts`` artifacts, so every ingest
makes a snapshot. The after-snapshot hooks of the policies and alerts apps are off in the ingest
processes (the journal's work is measured, as in bench/snapshots_ingest.py).

Rounds alternate one org / eight orgs (fresh reports each round); the figure is the median.

    .venv/bin/python bench/journal_throughput.py [--processes 8] [--reports 60] [--rounds 3]
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import statistics
import threading
import time

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_journal")

from snapshots_common import BENCH_DB, PG, ROOT, Process, make_org, ratio, setup, wait_until  # noqa: E402


def body(step: int, env_no: int, artifacts: int, churn: int) -> bytes:
    """Artifact set number ``step`` of an environment: exactly ``churn`` slots differ from step - 1 (slot
    ``i`` gets a new fingerprint each time the cursor ``step * churn`` passes it)."""
    items = []
    for i in range(artifacts):
        version = ((step + 1) * churn - 1 - i) // artifacts - (churn - 1 - i) // artifacts
        fingerprint = hashlib.sha256(f"{env_no}:{i}:{version}".encode()).hexdigest()
        items.append({"digests": {f"app-{i}": fingerprint}, "creationTimestamp": 1_764_000_000})
    return json.dumps({"artifacts": items}).encode()


def accept(envs, reports: int, artifacts: int, churn: int, first_step: int) -> list[list[int]]:
    """Accept ``reports`` changed reports per environment (as the web side would); their ids per env."""
    from audit.context import AuditContext
    from snapshots.services.reports import accept_report

    ctx = AuditContext.system("bench")
    ids = []
    for env_no, env in enumerate(envs):
        ids.append([accept_report(ctx, env, "server", body(step, env_no, artifacts, churn))[0].pk
                    for step in range(first_step, first_step + reports)])
    return ids


def ingest_process(report_ids: list[int], start, done):
    """One ingest worker: its own database connection, the reports of one environment in order."""
    import django
    from django.db import connections

    django.setup()
    from snapshots import hooks
    from snapshots.services.ingest import ingest_report

    hooks._after_snapshot.clear()
    connections["default"].ensure_connection()
    start.wait()
    for report_id in report_ids:
        outcome = ingest_report(report_id)
        if outcome is None or outcome.status != "snapshot":
            raise SystemExit(f"report {report_id} did not make a snapshot: {outcome and outcome.status}")
    done.put(time.perf_counter())


class LockSampler(threading.Thread):
    """Every 20 ms, how many of the benchmark's database sessions wait for a lock (pg_stat_activity):
    the share of the ingest processes queued behind a row lock (in one org: the journal head's)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self):
        import psycopg

        with psycopg.connect(f"{PG}/{BENCH_DB}", autocommit=True) as conn:
            while not self.stop.wait(0.02):
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND "
                                   "wait_event_type = 'Lock'", [BENCH_DB]).fetchone()
                self.samples.append(row[0])

    def mean(self) -> float:
        return statistics.mean(self.samples) if self.samples else 0.0


def run_round(ids: list[list[int]]) -> tuple[float, float]:
    """Reports per second of the processes ingesting ``ids`` (one list per process) at once, and the mean
    number of them waiting for a lock meanwhile."""
    from django.db import connections

    connections.close_all()  # the children open their own; a forked connection must not be shared
    context = multiprocessing.get_context("fork")
    start, done = context.Event(), context.Queue()
    processes = [context.Process(target=ingest_process, args=(chunk, start, done)) for chunk in ids]
    for process in processes:
        process.start()
    time.sleep(2)  # every child connected and waiting
    sampler = LockSampler()
    sampler.start()
    began = time.perf_counter()
    start.set()
    ends = [done.get(timeout=900) for _ in processes]
    sampler.stop.set()
    sampler.join()
    for process in processes:
        process.join()
        if process.exitcode:
            raise SystemExit(f"an ingest process failed (exit {process.exitcode})")
    return sum(len(chunk) for chunk in ids) / (max(ends) - began), sampler.mean()


def checkpoints_caught_up(orgs) -> bool:
    from journal.models import JournalHead, JournalTree

    heads = dict(JournalHead.objects.filter(org__in=orgs).values_list("org_id", "last_index"))
    trees = dict(JournalTree.objects.filter(org__in=orgs).values_list("org_id", "size"))
    return all(trees.get(org_id) == last for org_id, last in heads.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--reports", type=int, default=60, help="reports per environment and round")
    parser.add_argument("--artifacts", type=int, default=200)
    parser.add_argument("--churn", type=int, default=4, help="artifacts replaced by each report")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup()
    from audit.context import AuditContext
    from snapshots.services.environments import create_or_update_environment

    ctx = AuditContext.system("bench")
    one, _ = make_org("one")
    many = [make_org(f"org{i}")[0] for i in range(args.processes)]
    shared_envs = [create_or_update_environment(ctx, one, f"env{i}", "server")[0] for i in range(args.processes)]
    own_envs = [create_or_update_environment(ctx, org, "env", "server")[0] for org in many]

    print(f"{args.processes} ingest processes, {args.reports} reports each per round, {args.artifacts} artifacts, "
          f"{args.churn} replaced per report; {os.cpu_count()} CPU(s); checkpoints by a real Celery worker")
    results = {"one": [], "many": []}
    waiting = {"one": [], "many": []}
    step = 1
    with Process([str(ROOT / ".venv/bin/celery"), "-A", "csm", "worker", "--pool", "solo", "-Q", "celery",
                  "-l", "WARNING", "--without-mingle", "--without-gossip", "--without-heartbeat"]):
        # Round 0 warms both (first snapshots, caches); not counted.
        for round_no in range(args.rounds + 1):
            for name, envs in (("one", shared_envs), ("many", own_envs)):
                ids = accept(envs, args.reports, args.artifacts, args.churn, step)
                rate, waiters = run_round(ids)
                if round_no:
                    results[name].append(rate)
                    waiting[name].append(waiters)
                    print(f"   round {round_no}: {'1 org ' if name == 'one' else '8 orgs'} {rate:7.1f} reports/s, "
                          f"{waiters:.2f} of {args.processes} processes waiting for a lock on average")
            step += args.reports
        wait_until(lambda: checkpoints_caught_up([one, *many]), 120, "the checkpoints to catch up", interval=0.2)

    one_rate, many_rate = statistics.median(results["one"]), statistics.median(results["many"])
    paired = statistics.median(a / b for a, b in zip(results["one"], results["many"], strict=True))
    print(f"\nmedian: 8 environments of 1 org {one_rate:.1f} reports/s, of 8 orgs {many_rate:.1f} reports/s; "
          f"median of the rounds' ratios {paired:.2f}x")
    print(f"one org / eight orgs: {ratio(one_rate, many_rate)} (goal >= 0.80x); processes waiting for a lock: "
          f"{statistics.mean(waiting['one']):.2f} (1 org) vs {statistics.mean(waiting['many']):.2f} (8 orgs)")


if __name__ == "__main__":
    main()
