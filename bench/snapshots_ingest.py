"""Ingest throughput and write amplification of the snapshot journal.

1. End to end through the real API (gunicorn) and a real Celery worker: an environment of 1,000
   artifacts, then 1,000 reports each replacing 1% of them (k = 10): reports/s from the first PUT to the
   last committed outcome.
2. Worker time per report, in-process (median of 20), without the after-snapshot hooks of the policies
   and alerts apps: a byte-identical report (heartbeat shortcut), the same set in another order
   (unchanged, full canonicalize + diff), and a changed report (k = 10).
3. Rows and bytes written per changed snapshot (k = 10) for N = 1,000 and N = 10,000 artifacts: must stay
   ~flat as N grows (validity ranges: O(k) rows). The report row itself (the durable outbox holding the
   raw body) is shown apart: it is the input and grows with N by design.
4. Baseline in the same run: one plain COPY of a changed snapshot's new entry rows (the floor).

    .venv/bin/python bench/snapshots_ingest.py [--reports 1000] [--artifacts 1000]
"""

import argparse
import json
import statistics
import time

from snapshots_common import ENTRY_COLUMNS, Web, Worker, copy_seconds, make_org, outcome_ready, ratio, setup, wait_until


def body(fingerprints: list[str], reverse: bool = False) -> bytes:
    items = [{"digests": {f"app-{i}": fp}, "creationTimestamp": 1_764_000_000} for i, fp in enumerate(fingerprints)]
    return json.dumps({"artifacts": items[::-1] if reverse else items}).encode()


def churn(fingerprints: list[str], step: int, k: int) -> list[str]:
    out = fingerprints[:]
    for j in range(k):
        slot = (step * k + j) % len(out)
        out[slot] = f"{step:032x}{slot:032x}"
    return out


def end_to_end(token: str, reports: int, artifacts: int):
    import requests

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    fingerprints = [f"{i:064x}" for i in range(artifacts)]
    with Web() as web, Worker():
        session.put(f"{web.url}/api/v2/environments/bench", json={"name": "churn", "type": "server"}).raise_for_status()
        url = f"{web.url}/api/v2/environments/bench/churn/report/server"
        first = session.put(url, data=body(fingerprints)).json()["id"]
        wait_until(lambda: outcome_ready([first]), 120, "the first report")
        ids = []
        started = time.perf_counter()
        for step in range(1, reports + 1):
            fingerprints = churn(fingerprints, step, max(artifacts // 100, 1))
            response = session.put(url, data=body(fingerprints))
            response.raise_for_status()
            ids.append(response.json()["id"])
        accepted = time.perf_counter() - started
        wait_until(lambda: outcome_ready(ids), 900, "every report to be ingested", interval=0.2)
        total = time.perf_counter() - started
    return accepted, total


def journal_rows_and_bytes(env, index: int) -> tuple[int, int]:
    """Rows and bytes (pg_column_size) a snapshot added to the journal tables."""
    from django.db import connection

    queries = [
        ("SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM snapshots_snapshotentry t "
         "WHERE environment_id = %s AND (from_index = %s OR to_index = %s)", [env.pk, index, index]),
        ("SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM snapshots_snapshotevent t "
         "WHERE environment_id = %s AND snapshot_index = %s", [env.pk, index]),
        ("SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM snapshots_snapshot t "
         "WHERE environment_id = %s AND index = %s", [env.pk, index]),
        ("SELECT count(*), coalesce(sum(pg_column_size(l.*)), 0) FROM snapshots_snapshot s "
         "JOIN audit_journalleaf l ON l.id = s.leaf_id WHERE s.environment_id = %s AND s.index = %s", [env.pk, index]),
        ("SELECT count(*), coalesce(sum(pg_column_size(a.*) + pg_column_size(l.*)), 0) FROM audit_auditevent a "
         "JOIN audit_journalleaf l ON l.id = a.leaf_id WHERE a.target_type = 'snapshot' AND a.target_id = "
         "(SELECT id::text FROM snapshots_snapshot WHERE environment_id = %s AND index = %s)", [env.pk, index]),
        ("SELECT count(*), coalesce(sum(pg_column_size(o.*)), 0) FROM snapshots_reportoutcome o "
         "JOIN snapshots_snapshot s ON s.id = o.snapshot_id WHERE s.environment_id = %s AND s.index = %s",
         [env.pk, index]),
    ]
    rows = size = 0
    with connection.cursor() as cursor:
        for sql, params in queries:
            cursor.execute(sql, params)
            count, nbytes = cursor.fetchone()
            rows += count
            size += int(nbytes)
    return rows, size


def worker_times(org, artifacts: int, runs: int = 20):
    from audit.context import AuditContext
    from snapshots import hooks
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report
    from snapshots.services.reports import accept_report

    hooks._after_snapshot.clear()  # the journal's own work: policies / alerts hooks are measured by theirs

    ctx = AuditContext.system("bench")
    env, _ = create_or_update_environment(ctx, org, f"worker-{artifacts}", "server")
    fingerprints = [f"{i:064x}" for i in range(artifacts)]

    def ingest(raw: bytes) -> float:
        report, _ = accept_report(ctx, env, "server", raw)
        started = time.perf_counter()
        ingest_report(report.pk)
        return time.perf_counter() - started

    ingest(body(fingerprints))
    identical = [ingest(body(fingerprints)) for _ in range(runs)]
    reordered = [ingest(body(fingerprints, reverse=(i % 2 == 0))) for i in range(runs)]
    changed = []
    for step in range(1, runs + 1):
        fingerprints = churn(fingerprints, 10_000 + step, max(artifacts // 100, 1))
        changed.append(ingest(body(fingerprints)))
    return statistics.median(identical), statistics.median(reordered), statistics.median(changed)


def amplification(org, artifacts: int, k: int = 10, snapshots: int = 5):
    from django.db import connection

    from audit.context import AuditContext
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report
    from snapshots.services.reports import accept_report

    ctx = AuditContext.system("bench")
    env, _ = create_or_update_environment(ctx, org, f"amp-{artifacts}", "server")
    fingerprints = [f"{i:064x}" for i in range(artifacts)]
    report, _ = accept_report(ctx, env, "server", body(fingerprints))
    ingest_report(report.pk)
    results = []
    for step in range(1, snapshots + 1):
        fingerprints = churn(fingerprints, 20_000 + step, k)
        report, _ = accept_report(ctx, env, "server", body(fingerprints))
        ingest_report(report.pk)
        env.refresh_from_db()
        results.append(journal_rows_and_bytes(env, env.last_snapshot_index))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_size(t.*) FROM snapshots_report t WHERE id = %s", [report.pk])
        report_bytes = cursor.fetchone()[0]
    rows = statistics.mean(r for r, _ in results)
    size = statistics.mean(b for _, b in results)
    return rows, size, report_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--artifacts", type=int, default=1000)
    args = parser.parse_args()
    setup()
    from django.utils import timezone

    org, token = make_org()
    k = max(args.artifacts // 100, 1)
    floor = statistics.median(copy_seconds(
        [(org.pk, 1, f"app-{i}", f"{i:064x}", 1, "[]", timezone.now(), 2, "started") for i in range(k)],
        ENTRY_COLUMNS) for _ in range(20))
    print(f"floor: COPY of the {k} new entry rows of one changed snapshot: {floor * 1000:.2f} ms")

    accepted, total = end_to_end(token, args.reports, args.artifacts)
    print(f"\n1. end to end, {args.reports} reports of {args.artifacts} artifacts with 1% churn (real API + worker):")
    print(f"   all accepted in {accepted:.1f} s ({args.reports / accepted:.0f} reports/s), "
          f"all ingested in {total:.1f} s ({args.reports / total:.0f} reports/s end to end)")

    identical, reordered, changed = worker_times(org, args.artifacts)
    print(f"\n2. worker time per report, N = {args.artifacts} (median of 20):")
    print(f"   byte-identical (heartbeat shortcut) {identical * 1000:7.2f} ms   {ratio(identical, floor):>8} floor")
    print(f"   same set, other order (unchanged)   {reordered * 1000:7.2f} ms   {ratio(reordered, floor):>8} floor")
    print(f"   changed, k = {k:<3}                    {changed * 1000:7.2f} ms   {ratio(changed, floor):>8} floor")

    print("\n3. journal rows and bytes per changed snapshot (k = 10):")
    print(f"   {'N':>7} {'rows':>6} {'bytes':>8}   report row (outbox, raw body)")
    base = None
    for n in (1000, 10_000):
        rows, size, report_bytes = amplification(org, n)
        base = base or size
        print(f"   {n:>7,} {rows:6.0f} {size:8.0f}   {report_bytes:,} bytes   "
              f"(journal bytes {ratio(size, base)} of N=1,000)")


if __name__ == "__main__":
    main()
