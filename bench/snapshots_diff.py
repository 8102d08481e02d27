"""Reading and diffing 10,000-artifact snapshots through the real API (gunicorn), against the floor
measured in the same run.

Set-up: environment ``history`` with 10,000 artifacts and a 10,000-snapshot history in which every
snapshot replaced one artifact (written directly with COPY: ~20,000 entry rows with validity ranges,
as ingest would leave them); environment ``staging`` ingested for real from one 10,000-artifact report
that differs from ``history``'s latest in 100 artifacts.

- read: ``GET /api/v2/snapshots/bench/history/#N`` for N = 1, 5,000 and 10,000 versus the floor: one
  plain SQL query reading that snapshot's entries.
- diff: ``GET /api/v2/env-diff/bench?snappish1=history#5000&snappish2=staging`` versus the floor: one
  plain SQL query reading both snapshots' entries plus an in-memory set difference.

Target: within 5x of the floor. Median of 7 runs each. The API's time runs from the request to the last
byte of the answer received; the client's own JSON decoding of the answer (6.8 MB for a 10,000-artifact
read) is measured and printed apart, with the ratio it would give if counted.

    .venv/bin/python bench/snapshots_diff.py [--artifacts 10000] [--snapshots 10000]
"""

import argparse
import hashlib
import json
import statistics
import time
from datetime import timedelta
from urllib.parse import quote

from snapshots_common import Web, make_org, ratio, setup

ENTRY = ["org_id", "environment_id", "name", "fingerprint", "instance_count", "instances", "running_since",
         "from_index", "to_index", "change"]


def fingerprint(artifact: int, version: int) -> str:
    return hashlib.sha256(f"{artifact}.{version}".encode()).hexdigest()


def build_history(org, env, artifacts: int, snapshots: int):
    """Write the entries, journal leaves and snapshots of a long history with COPY."""
    from django.db import connection, transaction
    from django.utils import timezone

    from journal.models import JournalHead, JournalLeaf
    from snapshots.models import Environment

    start = timezone.now() - timedelta(minutes=snapshots + 10)
    instances = json.dumps([{"creationTimestamp": 1_764_000_000}])
    current = [[fingerprint(i, 0), 1, None] for i in range(artifacts)]
    rows = []
    for index in range(2, snapshots + 1):
        slot = (index - 2) % artifacts
        fp, since, _ = current[slot]
        rows.append((org.pk, env.pk, f"app-{slot}", fp, 1, instances, start + timedelta(minutes=since),
                     since, index, "started"))
        current[slot] = [fingerprint(slot, index), index, None]
    for slot, (fp, since, _) in enumerate(current):
        rows.append((org.pk, env.pk, f"app-{slot}", fp, 1, instances, start + timedelta(minutes=since), since, None,
                     "started"))
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY snapshots_snapshotentry ({', '.join(ENTRY)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        head = JournalHead.objects.select_for_update().get(org=org)
        base = head.last_index
        with cursor.cursor.copy("COPY audit_journalleaf (org_id, index, kind, object_id, payload, leaf_hash, "
                                "prev_hash, created_at) FROM STDIN") as copy:
            for index in range(1, snapshots + 1):
                copy.write_row((org.pk, base + index, "snapshot", f"{env.pk}#{index}", "{}", "0" * 64, "0" * 64,
                                start + timedelta(minutes=index)))
        leaves = dict(JournalLeaf.objects.filter(org=org, index__gt=base).values_list("index", "id"))
        with cursor.cursor.copy("COPY snapshots_snapshot (org_id, environment_id, index, created_at, reason, "
                                "reporter_label, artifact_count, instance_count, started_count, exited_count, "
                                "scaled_count, artifacts_digest, prev_hash, hash, leaf_id) FROM STDIN") as copy:
            for index in range(1, snapshots + 1):
                copy.write_row((org.pk, env.pk, index, start + timedelta(minutes=index), "report", "bench", artifacts,
                                artifacts, artifacts if index == 1 else 1, 0 if index == 1 else 1, 0, "0" * 64,
                                "0" * 64, "0" * 64, leaves[base + index]))
        JournalHead.objects.filter(pk=head.pk).update(last_index=base + snapshots)
        Environment.objects.filter(pk=env.pk).update(last_snapshot_index=snapshots, current_artifact_count=artifacts,
                                                     last_snapshot_at=start + timedelta(minutes=snapshots))
    return current


def median_seconds(fn, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


VALID_AT = "environment_id = %s AND from_index <= %s AND (to_index IS NULL OR to_index > %s)"


def floor_read(env_id: int, index: int):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT name, fingerprint, instance_count, instances, running_since "  # noqa: S608
                       f"FROM snapshots_snapshotentry WHERE {VALID_AT}", [env_id, index, index])
        return cursor.fetchall()


def floor_diff(env1: int, index1: int, env2: int, index2: int):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1, name, fingerprint, instance_count FROM snapshots_snapshotentry WHERE {VALID_AT} "
                       f"UNION ALL SELECT 2, name, fingerprint, instance_count FROM snapshots_snapshotentry "  # noqa: S608
                       f"WHERE {VALID_AT}", [env1, index1, index1, env2, index2, index2])
        one, two = {}, {}
        for side, name, fp, count in cursor.fetchall():
            (one if side == 1 else two)[(name, fp)] = count
    return one.keys() - two.keys(), two.keys() - one.keys(), {k for k in one.keys() & two.keys() if one[k] != two[k]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=int, default=10_000)
    parser.add_argument("--snapshots", type=int, default=10_000)
    args = parser.parse_args()
    setup()
    import requests

    from audit.context import AuditContext
    from snapshots.models import Environment, SnapshotEntry
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report
    from snapshots.services.reports import accept_report

    org, token = make_org()
    ctx = AuditContext.system("bench")
    history, _ = create_or_update_environment(ctx, org, "history", "server")
    staging, _ = create_or_update_environment(ctx, org, "staging", "server")
    started = time.perf_counter()
    current = build_history(org, history, args.artifacts, args.snapshots)
    print(f"history: {args.snapshots:,} snapshots of {args.artifacts:,} artifacts, "
          f"{SnapshotEntry.objects.filter(environment=history).count():,} entry rows "
          f"(written in {time.perf_counter() - started:.1f} s)")
    staged = [fp if slot % 100 else fingerprint(slot, 10**6) for slot, (fp, _, _) in enumerate(current)]
    body = json.dumps({"artifacts": [{"digests": {f"app-{slot}": fp}, "creationTimestamp": 1_764_000_000}
                                     for slot, fp in enumerate(staged)]}).encode()
    report, _ = accept_report(ctx, staging, "server", body)
    ingest_report(report.pk)
    staging = Environment.objects.get(pk=staging.pk)
    history = Environment.objects.get(pk=history.pk)
    analyze()

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    with Web() as web:
        def fetch(path) -> bytes:
            """The whole answer, received: the API's time. Decoding it is the client's, measured apart."""
            response = session.get(f"{web.url}{path}", timeout=120)
            response.raise_for_status()
            return response.content

        def row(label, floor, api, body):
            decode = median_seconds(lambda: json.loads(body))
            print(f"{label:44} {floor * 1000:9.1f} {api * 1000:9.1f} {ratio(api, floor):>7}   "
                  f"{len(body) / 1e6:5.1f} MB, client decode {decode * 1000:6.1f} ms "
                  f"(with it {ratio(api + decode, floor)})")

        print(f"\n{'operation':44} {'floor ms':>9} {'API ms':>9} {'ratio':>7}   answer")
        for index in (1, args.snapshots // 2, args.snapshots):
            path = f"/api/v2/snapshots/bench/history/{quote(f'#{index}')}"
            body = fetch(path)  # warm up
            assert len(json.loads(body)["artifacts"]) == args.artifacts + (1 if index > 1 else 0)  # + the exited one
            floor = median_seconds(lambda i=index: floor_read(history.pk, i))
            api = median_seconds(lambda p=path: fetch(p))
            row(f"read history#{index} ({args.artifacts:,} artifacts)", floor, api, body)
        for index in (args.snapshots, args.snapshots // 2):
            only1, only2, _ = floor_diff(history.pk, index, staging.pk, staging.last_snapshot_index)
            path = f"/api/v2/env-diff/bench?snappish1={quote(f'history#{index}')}&snappish2=staging"
            body = fetch(path)
            answer = json.loads(body)
            assert len(answer["snappish1"]["artifacts"]) + len(answer["changed"]["artifacts"]) == len(only1)
            floor = median_seconds(lambda i=index: floor_diff(history.pk, i, staging.pk, staging.last_snapshot_index))
            api = median_seconds(lambda p=path: fetch(p))
            row(f"diff history#{index} vs staging ({len(only1):,} differ)", floor, api, body)
        print("target: within 5x of the floor")
    # The journal's own part, in-process (the API above also runs the evidence and policies enrichers).
    from snapshots import selectors

    print(f"\n{'in-process, journal selectors only':44} {'floor ms':>9} {'ours ms':>9} {'ratio':>7}")
    for index in (1, args.snapshots):
        snapshot = selectors.resolve_snapshot(history, f"#{index}")
        floor = median_seconds(lambda i=index: floor_read(history.pk, i))
        ours = median_seconds(lambda s=snapshot: selectors.snapshot_artifacts(s, include_exited=True))
        print(f"{f'snapshot_artifacts(history#{index})':44} {floor * 1000:9.1f} {ours * 1000:9.1f} "
              f"{ratio(ours, floor):>7}")
    latest = selectors.latest_snapshot(staging)
    for index in (args.snapshots, args.snapshots // 2):
        snapshot = selectors.resolve_snapshot(history, f"#{index}")
        floor = median_seconds(lambda i=index: floor_diff(history.pk, i, staging.pk, staging.last_snapshot_index))
        ours = median_seconds(lambda s=snapshot: selectors.diff_snapshots(s, latest))
        print(f"{f'diff_snapshots(history#{index}, staging)':44} {floor * 1000:9.1f} {ours * 1000:9.1f} "
              f"{ratio(ours, floor):>7}")


def analyze():
    """ANALYZE after the bulk load, as autovacuum would shortly after."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE snapshots_snapshotentry")
        cursor.execute("ANALYZE snapshots_snapshot")


if __name__ == "__main__":
    main()
