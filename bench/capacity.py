"""Capacity: how many environments one machine serves within a 5-second ingest lag.

A load generator (a thread pool of HTTP clients, open loop) plays N agents, each reporting its own
Kubernetes environment every ``--interval`` seconds (60), spread evenly over the interval, against a real
gunicorn and real Celery worker processes on this machine, through the real API with the agents' tokens.
Bodies are kosli-shaped K8S reports of 50-500 pods (two containers each: the app and a sidecar), with
``--churn`` (1%) of the pods replaced per report (a new pod name; now and then a deployment rolls to a new
image), and ``--quiet`` (10%) of the environments that never change (every report a heartbeat).

For each N it measures, over ``--minutes`` (10):
- ingest lag = report accepted (``Report.received_at``) -> snapshot committed (``ReportOutcome.finished_at``):
  p50 / p95 / p99 / max, overall and per minute (a minute whose p95 is over 5 s fails the run);
- the PUT answer time seen by the agents, and how late the generator itself sent (a client that cannot
  keep its schedule would hide an overloaded server);
- CPU (seconds per second, i.e. cores) and peak memory of every process: gunicorn, Celery workers,
  PostgreSQL backends of the bench database, redis-server, and the generator itself.

Then ``--curve 1,2,4`` measures ingest throughput against the number of worker processes: a backlog of
``--backlog`` changed reports is accepted with no worker running, then K workers drain it; reports/s and
the ratio to one worker in the same run.

    .venv/bin/python bench/capacity.py --agents 1000,2000,3000 --minutes 10
    .venv/bin/python bench/capacity.py --agents 0 --curve 1,2,4 --backlog 1500

Its own database (``csm_bench_capacity`` unless CSM_BENCH_DB says otherwise) and redis-server
(bench/snapshots_common.py). Figures: docs/benchmarks.md, section "Capacity".
"""

import argparse
import hashlib
import json
import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_capacity")

import snapshots_common as common  # noqa: E402

LAG_LIMIT_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Cluster:
    """One agent's Kubernetes environment: deployments of 5 pods, each pod an app image plus a sidecar."""

    def __init__(self, index: int, rng: random.Random, quiet: bool, churn: float):
        self.index = index
        self.rng = rng
        self.quiet = quiet
        self.churn = churn
        pods = rng.randint(50, 500)
        self.deployments = [0] * max(pods // 5, 1)  # each deployment's image version
        self.pods = [[d, f"{rng.getrandbits(40):010x}"] for d in range(len(self.deployments)) for _ in range(5)]
        self.generation = 0

    def step(self):
        """One minute of a cluster's life: ~churn of its pods replaced; 1 in 20 replacements is a rollout."""
        if self.quiet:
            return
        for pod in self.pods:
            if self.rng.random() < self.churn:
                if self.rng.random() < 0.05:
                    self.deployments[pod[0]] += 1
                pod[1] = f"{self.rng.getrandbits(40):010x}"

    def body(self) -> bytes:
        sidecar = sha("envoy:1.29")
        artifacts = []
        for deployment, suffix in self.pods:
            version = self.deployments[deployment]
            artifacts.append({
                "podName": f"svc-{deployment}-{suffix}", "namespace": f"team-{deployment % 7}",
                "digests": {f"ghcr.io/acme/c{self.index}-svc-{deployment}:1.{version}":
                            sha(f"{self.index}.{deployment}.{version}"), "envoy:v1.29": sidecar},
                "creationTimestamp": 1_764_000_000 + deployment,
                "owners": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"svc-{deployment}-7d9f8c6b5",
                            "uid": f"5c1e{deployment:08x}-0000-4000-8000-000000000000", "controller": True,
                            "blockOwnerDeletion": True}],
            })
        return json.dumps({"artifacts": artifacts, "type": "K8S"}).encode()


def create_environments(agents: int, orgs: int):
    """``orgs`` orgs, each with an agent token; ``agents`` K8S environments spread over them.
    Returns [(org slug, token, environment name)] (created once, extended when a later N is larger)."""
    from audit.context import AuditContext
    from snapshots.models import Environment
    from snapshots.services.environments import create_or_update_environment
    from tenants.models import Org

    global _TOKENS
    ctx = AuditContext.system("bench")
    if not _TOKENS:
        for o in range(orgs):
            org, token = common.make_org(f"cap{o}")
            _TOKENS.append((org.slug, token))
    existing = Environment.objects.count()
    for i in range(existing, agents):
        slug, _ = _TOKENS[i % orgs]
        create_or_update_environment(ctx, Org.objects.get(slug=slug), f"k8s-{i}", "K8S")
    return [(_TOKENS[i % orgs][0], _TOKENS[i % orgs][1], f"k8s-{i}") for i in range(agents)]


_TOKENS: list = []


class ProcessSampler(threading.Thread):
    """CPU seconds of every process of interest, sampled once a second from /proc (a PostgreSQL backend
    that exits between two samples loses at most a second of its time); peak memory (VmHWM) at the end."""

    def __init__(self, groups):
        super().__init__(daemon=True)
        self.groups = groups  # name -> callable returning pids
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group_of: dict[int, str] = {}
        self.peak: dict[int, float] = {}
        self.stop_event = threading.Event()

    @staticmethod
    def cpu_seconds(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return None

    def sample(self):
        for group, pids in self.groups.items():
            for pid in pids():
                seconds = self.cpu_seconds(pid)
                if seconds is None:
                    continue
                self.first.setdefault(pid, seconds)
                self.last[pid] = seconds
                self.group_of[pid] = group
                try:
                    self.peak[pid] = max(self.peak.get(pid, 0.0), common.peak_rss_mib(pid))
                except OSError:
                    pass

    def run(self):
        while not self.stop_event.wait(1.0):
            self.sample()

    def stop(self):
        self.sample()
        self.stop_event.set()

    def report(self, seconds: float) -> dict:
        out: dict[str, dict] = {}
        for pid, group in self.group_of.items():
            entry = out.setdefault(group, {"cpu": 0.0, "processes": 0, "peak_mib": 0.0, "sum_peak_mib": 0.0})
            entry["cpu"] += (self.last[pid] - self.first[pid]) / seconds
            entry["processes"] += 1
            entry["peak_mib"] = max(entry["peak_mib"], self.peak.get(pid, 0.0))
            entry["sum_peak_mib"] += self.peak.get(pid, 0.0)
        return out


def postgres_pids() -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                       [common.BENCH_DB])
        return [row[0] for row in cursor.fetchall()]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def lags_since(first_id: int) -> list[tuple[float, float]]:
    """(received epoch seconds, lag seconds) of every report with id > first_id and an outcome."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM r.received_at), extract(epoch FROM o.finished_at - r.received_at) "
            "FROM snapshots_report r JOIN snapshots_reportoutcome o ON o.report_id = r.id WHERE r.id > %s",
            [first_id])
        return [(float(a), float(b)) for a, b in cursor.fetchall()]


def pending_count() -> int:
    from snapshots.models import Report

    return Report.objects.filter(outcome__isnull=True).count()


def max_report_id() -> int:
    from django.db.models import Max

    from snapshots.models import Report

    return Report.objects.aggregate(m=Max("id"))["m"] or 0


def put(session_for, url: str, token: str, body: bytes, key: str):
    session = session_for(token)
    started = time.monotonic()
    for attempt in range(5):  # like the agent: retry a failed connection with the same Idempotency-Key
        try:
            response = session.put(url, data=body, headers={"Idempotency-Key": key}, timeout=60)
            return response.status_code, time.monotonic() - started
        except Exception:  # noqa: BLE001 - a refused/reset connection is retried, then counted as failed
            time.sleep(0.5 * (attempt + 1))
    return 0, time.monotonic() - started


def sessions():
    import requests

    local = threading.local()

    def session_for(token: str):
        cache = getattr(local, "sessions", None)
        if cache is None:
            cache = local.sessions = {}
        if token not in cache:
            session = requests.Session()
            session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            cache[token] = session
        return cache[token]

    return session_for


def warm_up(web_url: str, agents, clusters, client_threads: int):
    """Every environment's first report (its initial snapshot), then wait until all are ingested."""
    session_for = sessions()
    with ThreadPoolExecutor(client_threads) as pool:
        futures = [pool.submit(put, session_for, f"{web_url}/api/v2/environments/{slug}/{env}/report/K8S", token,
                               clusters[i].body(), f"warm-{env}-{clusters[i].generation}")
                   for i, (slug, token, env) in enumerate(agents) if clusters[i].generation == 0]
        statuses = [f.result()[0] for f in futures]
    bad = [s for s in statuses if s not in (200, 201)]
    if bad:
        raise SystemExit(f"warm-up: {len(bad)} reports refused (status {bad[:5]})")
    for cluster in clusters:
        cluster.generation = max(cluster.generation, 1)
    common.wait_until(lambda: pending_count() == 0, 1800, "the warm-up reports to be ingested", interval=1)


def run_load(web_url: str, agents, clusters, minutes: float, interval: float, client_threads: int, sampler):
    """Open loop: agent i reports at t0 + i/N * interval + k * interval. Returns the client-side figures."""
    session_for = sessions()
    n = len(agents)
    first_id = max_report_id()
    answers: list[tuple[int, float, float]] = []  # status, answer seconds, send delay
    lock = threading.Lock()

    def job(i: int, due: float):
        delay = time.monotonic() - due
        slug, token, env = agents[i]
        cluster = clusters[i]
        cluster.step()
        cluster.generation += 1
        status, seconds = put(session_for, f"{web_url}/api/v2/environments/{slug}/{env}/report/K8S", token,
                              cluster.body(), f"{env}-{cluster.generation}")
        with lock:
            answers.append((status, seconds, delay))

    rounds = max(int(minutes * 60 / interval), 1)
    sampler.start()
    started = time.monotonic()
    with ThreadPoolExecutor(client_threads) as pool:
        for k in range(rounds):
            for i in range(n):
                due = started + k * interval + i * interval / n
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(job, i, due)
    sent_for = time.monotonic() - started
    drained = common.wait_until(lambda: pending_count() == 0 or None, 900, "the backlog to drain", interval=0.5)
    elapsed = time.monotonic() - started
    sampler.stop()
    return first_id, answers, sent_for, elapsed, drained


def summarize(n: int, first_id: int, answers, sent_for: float, elapsed: float, processes: dict, interval: float):
    lags = lags_since(first_id)
    lag_values = [lag for _, lag in lags]
    start = min((at for at, _ in lags), default=0.0)
    per_minute: dict[int, list[float]] = {}
    for at, lag in lags:
        per_minute.setdefault(int((at - start) // 60), []).append(lag)
    minute_p95 = [percentile(v, 0.95) for _, v in sorted(per_minute.items())]
    ok = [a for a in answers if a[0] in (200, 201)]
    result = {
        "agents": n, "offered_per_s": n / interval, "sent": len(answers), "accepted": len(ok),
        "refused": len(answers) - len(ok), "accepted_per_s": len(ok) / sent_for,
        "answer_p50_ms": 1000 * percentile([a[1] for a in ok], 0.5),
        "answer_p95_ms": 1000 * percentile([a[1] for a in ok], 0.95),
        "send_delay_p95_ms": 1000 * percentile([a[2] for a in answers], 0.95),
        "ingested": len(lags), "lag_p50_s": percentile(lag_values, 0.5), "lag_p95_s": percentile(lag_values, 0.95),
        "lag_p99_s": percentile(lag_values, 0.99), "lag_max_s": max(lag_values, default=float("nan")),
        "worst_minute_p95_s": max(minute_p95, default=float("nan")), "minutes": len(minute_p95),
        "processes": processes,
    }
    result["passed"] = (result["refused"] == 0 and result["ingested"] == result["accepted"]
                        and result["worst_minute_p95_s"] < LAG_LIMIT_S)
    return result


def print_result(r: dict):
    verdict = "PASS" if r["passed"] else "FAIL"
    print(f"\n== N = {r['agents']:,} environments ({r['offered_per_s']:.1f} reports/s offered): {verdict}")
    print(f"   accepted {r['accepted']:,} of {r['sent']:,} ({r['accepted_per_s']:.1f}/s), refused {r['refused']}, "
          f"ingested {r['ingested']:,}")
    print(f"   PUT answered p50 {r['answer_p50_ms']:.0f} ms, p95 {r['answer_p95_ms']:.0f} ms; generator late "
          f"p95 {r['send_delay_p95_ms']:.0f} ms")
    print(f"   ingest lag p50 {r['lag_p50_s']:.2f} s, p95 {r['lag_p95_s']:.2f} s, p99 {r['lag_p99_s']:.2f} s, "
          f"max {r['lag_max_s']:.2f} s; worst minute's p95 {r['worst_minute_p95_s']:.2f} s over {r['minutes']} min")
    print("   process        CPU (cores)  processes  peak RSS (largest / sum, MiB)")
    for name, p in sorted(r["processes"].items()):
        print(f"   {name:<14} {p['cpu']:>10.2f}  {p['processes']:>9}  {p['peak_mib']:>8.0f} / {p['sum_peak_mib']:.0f}")


def curve(web_url: str, agents, clusters, counts: list[int], backlog: int, client_threads: int):
    """Ingest throughput of K worker processes draining the same kind of backlog (changed reports)."""
    results = []
    session_for = sessions()
    for k in counts:
        first_id = max_report_id()
        jobs = []
        for j in range(backlog):
            i = j % len(agents)
            cluster = clusters[i]
            cluster.quiet = False
            cluster.step()
            cluster.deployments[0] += 1  # every report of the backlog changes its environment
            cluster.generation += 1
            jobs.append((i, cluster.body(), cluster.generation))
        with ThreadPoolExecutor(client_threads) as pool:
            statuses = list(pool.map(lambda job, k=k: put(
                session_for, f"{web_url}/api/v2/environments/{agents[job[0]][0]}/{agents[job[0]][2]}/report/K8S",
                agents[job[0]][1], job[1], f"curve{k}-{agents[job[0]][2]}-{job[2]}")[0], jobs))
        if any(s not in (200, 201) for s in statuses):
            raise SystemExit("curve: a backlog report was refused")
        sampler = ProcessSampler({"postgres": postgres_pids})
        workers = [common.Worker(f"curve{k}-{w}") for w in range(k)]
        sampler.groups["celery worker"] = lambda workers=workers: [w.popen.pid for w in workers]
        sampler.start()
        started = time.monotonic()
        common.wait_until(lambda: pending_count() == 0, 1800, f"{k} worker(s) to drain the backlog", interval=0.2)
        sampler.stop()
        for worker in workers:
            worker.stop()
        # From the first outcome to the last, so the workers' start-up (~3 s) is not counted.
        finished = sorted(at + lag for at, lag in lags_since(first_id))
        done = len(finished) - 1
        elapsed = finished[-1] - finished[0]
        cpu = sampler.report(time.monotonic() - started)
        results.append((k, done / elapsed, cpu))
        print(f"   {k} worker process(es): {done:,} reports in {elapsed:.1f} s = {done / elapsed:.1f} reports/s; "
              f"CPU workers {cpu.get('celery worker', {}).get('cpu', 0):.2f}, "
              f"PostgreSQL {cpu.get('postgres', {}).get('cpu', 0):.2f} cores")
    base = results[0][1]
    print("\n   workers  reports/s  vs 1 worker")
    for k, rate, _ in results:
        print(f"   {k:>7}  {rate:>9.1f}  {common.ratio(rate, base)}")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default="1000,2000,3000", help="comma-separated N to try, in order; 0 = none")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--interval", type=float, default=60, help="seconds between two reports of one agent")
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--churn", type=float, default=0.01, help="share of pods replaced per report")
    parser.add_argument("--quiet", type=float, default=0.10, help="share of environments that never change")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes during the load runs")
    parser.add_argument("--client-threads", type=int, default=64)
    parser.add_argument("--curve", default="", help="e.g. 1,2,4: worker processes draining a backlog")
    parser.add_argument("--backlog", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()

    common.setup()
    counts = [int(x) for x in args.agents.split(",") if x.strip() and int(x) > 0]
    most = max(counts + [200 if args.curve else 0])
    rng = random.Random(args.seed)
    clusters = [Cluster(i, rng, rng.random() < args.quiet, args.churn) for i in range(most)]
    print(f"csm capacity: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"gunicorn {args.web_workers}x{args.threads} threads, {args.workers} Celery worker process(es)")
    results = []
    with common.Web(threads=args.threads, workers=args.web_workers) as web:
        for n in counts:
            agents = create_environments(n, args.orgs)
            pods = [len(c.pods) for c in clusters[:n]]
            workers = [common.Worker(f"load{w}") for w in range(args.workers)]
            try:
                warm_up(web.url, agents, clusters[:n], args.client_threads)
                print(f"\nN = {n:,}: {sum(pods):,} pods ({min(pods)}-{max(pods)} per environment), "
                      f"body {statistics.mean(len(c.body()) for c in clusters[:20]) / 1024:.0f} KiB on average; "
                      f"running {args.minutes:g} min, load average {os.getloadavg()[0]:.1f}")
                sampler = ProcessSampler({
                    "gunicorn": lambda: [web.popen.pid, *common.children(web.popen.pid)],
                    "celery worker": lambda workers=workers: [w.popen.pid for w in workers],
                    "postgres": postgres_pids,
                    "generator": lambda: [os.getpid()],
                })
                first_id, answers, sent_for, elapsed, _ = run_load(
                    web.url, agents, clusters[:n], args.minutes, args.interval, args.client_threads, sampler)
                result = summarize(n, first_id, answers, sent_for, elapsed, sampler.report(elapsed), args.interval)
            finally:
                for worker in workers:
                    worker.stop()
            print_result(result)
            results.append(result)
        if args.curve:
            n = max(counts + [200])
            agents = create_environments(n, args.orgs)
            print(f"\nworker curve: backlogs of {args.backlog:,} changed reports over {n:,} environments")
            warm_workers = [common.Worker("warm")]
            warm_up(web.url, agents, clusters[:n], args.client_threads)
            warm_workers[0].stop()
            results.append({"curve": [(k, rate, cpu) for k, rate, cpu in
                                      curve(web.url, agents, clusters[:n], [int(x) for x in args.curve.split(",")],
                                            args.backlog, args.client_threads)]})
    passing = [r["agents"] for r in results if r.get("passed")]
    if counts:
        best = max(passing) if passing else "none of those tried"
        print(f"\nlargest N within a {LAG_LIMIT_S:g} s p95 ingest lag: {best}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
