"""Baseline for the journal's write path: the same entry rows ingest writes, written with one plain
PostgreSQL COPY into a table shaped and indexed like ``snapshots_snapshotentry``. The other snapshot
benchmarks measure this floor in their own run and state ingest as a ratio of it; run alone, this prints
the floor for typical sizes.

    .venv/bin/python bench/snapshots_copy_baseline.py [--rows 1000 10000 150000]
"""

import argparse
import json

from snapshots_common import ENTRY_COLUMNS, copy_seconds, setup


def rows_like_ingest(count: int, pods_per_artifact: int = 2) -> list[tuple]:
    from django.utils import timezone

    now = timezone.now()
    rows = []
    for n in range(count):
        pods = [{"podName": f"svc-{n}-{p}", "namespace": "prod", "creationTimestamp": 1_764_000_000 + p,
                 "owners": [{"kind": "ReplicaSet", "name": f"svc-{n}"}]} for p in range(pods_per_artifact)]
        rows.append((1, 1, f"ghcr.io/acme/svc-{n}:1.0", f"{n:064x}", pods_per_artifact, json.dumps(pods), now, 1,
                     "started"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10_000, 150_000])
    args = parser.parse_args()
    setup()
    print(f"{'rows':>9} {'COPY s':>9} {'rows/s':>12} {'MB':>8}")
    for count in args.rows:
        rows = rows_like_ingest(count)
        size = sum(len(r[5]) + len(r[2]) + 64 for r in rows) / 1e6
        best = min(copy_seconds(rows, ENTRY_COLUMNS) for _ in range(3))
        print(f"{count:>9,} {best:9.3f} {count / best:12,.0f} {size:8.1f}")


if __name__ == "__main__":
    main()
