"""Compliance decisions with a policy attached: rows written per snapshot, and evaluation time.

An environment of N artifacts (N = 1,000 and 10,000; half of them with provenance in the evidence
vault) with a policy attached (provenance required), then snapshots each replacing k artifacts: k = 10
for both sizes (rows per snapshot must be the same) and k = 1% of N (rows per change must be the same).
Per changed snapshot, in-process:

1. Rows written by its evaluation: decision ranges opened + ranges closed (an UPDATE of ``to_index``)
   + the summary row. Must stay flat as N grows (O(changes)). Baseline in the same run: what the
   previous design wrote, one row holding every artifact's decision (its bytes are measured by
   ``pg_column_size`` of the same decisions as one JSON list).
2. Evaluation time (``evaluate_snapshot``) against the ingest of the same snapshot (``ingest_report``
   without the after-snapshot hooks) as the baseline, and against a full evaluation of every artifact
   (what each snapshot used to cost).

3. The same without a policy (secure defaults: compliance unknown, every artifact's authorization
   counted): rows per snapshot must stay 1 (the summary row with its ``unauthorized_count``, no
   per-artifact rows), and the evaluation time (the unauthorized count is one counting query).

    .venv/bin/python bench/policies_decisions.py [--snapshots 10] [--sizes 1000,10000]

Uses its own database (``csm_bench_policies`` unless CSM_BENCH_DB says otherwise) and redis-server
(see bench/snapshots_common.py); no web server or worker.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("CSM_BENCH_DB", "csm_bench_policies")

from snapshots_common import make_org, ratio, setup  # noqa: E402  (the database name is read on import)

POLICY = "_schema: https://kosli.com/schemas/policy/environment/v1\nartifacts:\n  provenance:\n    required: true\n"


def body(fingerprints: list[str]) -> bytes:
    items = [{"digests": {f"app-{i}": fp}, "creationTimestamp": 1_764_000_000} for i, fp in enumerate(fingerprints)]
    return json.dumps({"artifacts": items}).encode()


def churn(fingerprints: list[str], step: int, k: int) -> list[str]:
    out = fingerprints[:]
    for j in range(k):
        slot = (step * k + j) % len(out)
        out[slot] = f"{step:032x}{slot:032x}"
    return out


def give_provenance(org, name: str, fingerprints: list[str]) -> None:
    from evidence.models import Artifact, Flow, Trail

    flow = Flow.objects.create(org=org, name=name)
    trail = Trail.objects.create(org=org, flow=flow, name="t1")
    Artifact.objects.bulk_create([Artifact(org=org, flow=flow, trail=trail, fingerprint=fp, filename="app",
                                           template_name="app") for fp in fingerprints], batch_size=2000)


def rows_written(env, index: int) -> tuple[int, int]:
    """(decision rows opened + closed + summary rows, bytes of the rows opened) by snapshot ``index``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE from_index = %s), count(*) FILTER (WHERE to_index = %s), "
                       "coalesce(sum(pg_column_size(t.*)) FILTER (WHERE from_index = %s), 0) "
                       "FROM policies_compliancedecision t WHERE environment_id = %s", [index, index, index, env.pk])
        opened, closed, size = cursor.fetchone()
        cursor.execute("SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM policies_snapshotcompliance t "
                       "WHERE environment_id = %s AND snapshot_index = %s", [env.pk, index])
        summaries, summary_bytes = cursor.fetchone()
    return opened + closed + summaries, int(size) + int(summary_bytes)


def old_row_bytes(decisions: list[dict]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_size(%s::jsonb)", [json.dumps(decisions)])
        return cursor.fetchone()[0]


def run(org, artifacts: int, k: int, snapshots: int, policed: bool = True) -> dict:
    from audit.context import AuditContext
    from policies import services as policies
    from policies.models import SnapshotCompliance
    from snapshots.models import Snapshot
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report
    from snapshots.services.reports import accept_report

    ctx = AuditContext.system("bench")
    env, _ = create_or_update_environment(ctx, org, f"{'policed' if policed else 'unpoliced'}-{artifacts}-{k}",
                                          "server")
    if policed:
        policies.save_policy(ctx, org, "needs-provenance", POLICY)
        policies.attach_policies(ctx, org, env, ["needs-provenance"])
    fingerprints = [f"{artifacts:08x}{k:08x}{i:048x}" for i in range(artifacts)]
    give_provenance(org, env.name, fingerprints[::2])

    def ingest(raw: bytes) -> tuple[Snapshot, float]:
        report, _ = accept_report(ctx, env, "server", raw)
        started = time.perf_counter()
        outcome = ingest_report(report.pk)
        return outcome.snapshot, time.perf_counter() - started

    first, _ = ingest(body(fingerprints))
    policies.evaluate_snapshot(first.pk)  # the first evaluation decides everything (N rows, once)
    results = []
    for step in range(1, snapshots + 1):
        fingerprints = churn(fingerprints, step + 1000 * k, k)
        snapshot, ingest_seconds = ingest(body(fingerprints))
        started = time.perf_counter()
        policies.evaluate_snapshot(snapshot.pk)
        evaluate_seconds = time.perf_counter() - started
        started = time.perf_counter()
        full = policies.preview_snapshot(snapshot)["artifacts"]  # the whole evaluation, as every snapshot used to
        full_seconds = time.perf_counter() - started
        rows, size = rows_written(env, snapshot.index)
        results.append((rows, size, ingest_seconds, evaluate_seconds, full_seconds, old_row_bytes(full)))
    last = SnapshotCompliance.objects.get(snapshot=snapshot)
    return {
        "unauthorized": last.unauthorized_count, "compliant": last.compliant,
        "rows": statistics.mean(r[0] for r in results),
        "bytes": statistics.mean(r[1] for r in results),
        "ingest": statistics.median(r[2] for r in results),
        "evaluate": statistics.median(r[3] for r in results),
        "full": statistics.median(r[4] for r in results),
        "old_bytes": statistics.mean(r[5] for r in results),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--snapshots", type=int, default=10)
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    setup()
    from snapshots import hooks

    hooks._after_snapshot.clear()  # ingest alone is the baseline; evaluation is timed on its own
    org, _ = make_org()
    sizes = [int(n) for n in args.sizes.split(",")]
    print(f"policy attached (provenance required), {args.snapshots} changed snapshots per line (medians / means)")
    print(f"{'N':>7} {'k':>4} {'rows/snap':>9} {'rows/chg':>8} {'bytes/snap':>10} {'old row':>11} "
          f"{'ingest':>9} {'evaluate':>9} {'eval/ingest':>11} {'full eval':>9} {'eval/full':>9}")
    by_k: dict[str, list] = {"k = 10": [], "k = 1%": []}
    measured: dict[tuple[int, int], dict] = {}  # N = 1,000: k = 10 is 1%; measured once
    for label, k_of in (("k = 10", lambda n: 10), ("k = 1%", lambda n: max(n // 100, 1))):
        for n in sizes:
            k = k_of(n)
            if (n, k) in measured:
                by_k[label].append((n, k, measured[n, k]))
                continue
            r = measured[n, k] = run(org, n, k, args.snapshots)
            by_k[label].append((n, k, r))
            print(f"{n:>7,} {k:>4} {r['rows']:>9.1f} {r['rows'] / k:>8.2f} {r['bytes']:>10,.0f} "
                  f"{r['old_bytes']:>9,.0f} B {r['ingest'] * 1000:>7.1f}ms {r['evaluate'] * 1000:>7.1f}ms "
                  f"{ratio(r['evaluate'], r['ingest']):>11} {r['full'] * 1000:>7.1f}ms "
                  f"{ratio(r['evaluate'], r['full']):>9}")
    (n0, k0, small), (n1, k1, large) = by_k["k = 10"][0], by_k["k = 10"][-1]
    print(f"\nk = 10: rows per snapshot at N={n1:,} / N={n0:,}: {ratio(large['rows'], small['rows'])} "
          f"(the previous design: {ratio(large['old_bytes'], small['old_bytes'])} the bytes)")
    (n0, k0, small), (n1, k1, large) = by_k["k = 1%"][0], by_k["k = 1%"][-1]
    print(f"k = 1%: rows per change at N={n1:,} / N={n0:,}: {ratio(large['rows'] / k1, small['rows'] / k0)}")
    print("\nno policy (compliance unknown; authorization counted), k = 10:")
    print(f"{'N':>7} {'rows/snap':>9} {'bytes/snap':>10} {'ingest':>9} {'evaluate':>9} {'eval/ingest':>11} "
          f"{'unauthorized':>12} {'compliant':>9}")
    for n in sizes:
        r = run(org, n, 10, args.snapshots, policed=False)
        print(f"{n:>7,} {r['rows']:>9.1f} {r['bytes']:>10,.0f} {r['ingest'] * 1000:>7.1f}ms "
              f"{r['evaluate'] * 1000:>7.1f}ms {ratio(r['evaluate'], r['ingest']):>11} {r['unauthorized']:>12,} "
              f"{str(r['compliant']):>9}")


if __name__ == "__main__":
    main()
