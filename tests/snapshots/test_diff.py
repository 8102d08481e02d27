"""Diffing two snapshots (selectors.diff_snapshots): the one-query PostgreSQL diff against the portable
Python one, and its semantics pinned on a K8S history (started, exited, upgraded, scaled, unchanged)."""

import json
from datetime import UTC, datetime
from itertools import product

import pytest
from rest_framework.renderers import JSONRenderer

from snapshots import selectors
from snapshots.api.views import SnapshotJSONRenderer
from tests.snapshots.conftest import fp, k8s_pod

pytestmark = pytest.mark.django_db


def pods(*specs):
    """k8s_pod for each (images, pod name)."""
    return {"artifacts": [k8s_pod(images, name) for images, name in specs]}


@pytest.fixture
def journal(make_env, ingest):
    """k1 (two snapshots), k2 (another cluster), an ECS, a Cloud Run and a server environment."""
    k1, k2 = make_env("k1", "K8S"), make_env("k2", "K8S")
    ingest(k1, pods(({"web": fp(1), "envoy": fp(2)}, "p1"), ({"web": fp(1), "envoy": fp(2)}, "p2"),
                    ({"worker": fp(3), "envoy": fp(2)}, "p3"), ({"db": fp(4)}, "p4"), ({"lib": fp(5)}, "p7"),
                    ({"lib": fp(6)}, "p8"), ({"zeta": fp(20)}, "p9"), ({"alpha": fp(21), "Beta": fp(22)}, "p10"),
                    ({"ünï": fp(23)}, "p11")))
    ingest(k1, pods(({"web": fp(7), "envoy": fp(2)}, "p5"), ({"web": fp(7), "envoy": fp(2)}, "p6"),
                    ({"db": fp(4)}, "p4"), ({"lib": fp(5)}, "p7"), ({"lib": fp(8)}, "p12"), ({"lib": fp(9)}, "p13"),
                    ({"lib": fp(9)}, "p14"), ({"new": fp(10)}, "p15"), ({"alpha": fp(24)}, "p10"),
                    ({"ünï": fp(25)}, "p11"), ({"Beta": fp(22)}, "p16")))
    ingest(k2, pods(({"web": fp(7)}, "q1"), ({"lib": fp(6)}, "q2"), ({"lib": fp(5)}, "q3"), ({"db": fp(4)}, "q4"),
                    ({"db": fp(4)}, "q5")))
    ecs = make_env("e1", "ECS")
    task = {"cluster_name": "c", "service_name": "s", "creationTimestamp": 1_700_000_000}
    ingest(ecs, {"artifacts": [{**task, "taskArn": "arn:1", "digests": {"api": fp(30), "side": ""}},
                               {**task, "taskArn": "arn:2", "digests": {"web": fp(1)}}]})
    ingest(ecs, {"artifacts": [{**task, "taskArn": "arn:3", "digests": {"api": fp(31), "side": ""}},
                               {**task, "taskArn": "arn:2", "digests": {"web": fp(1)}},
                               {**task, "taskArn": "arn:4", "digests": {"web": fp(1)}}]})
    run = make_env("run", "cloud-run")
    ingest(run, {"artifacts": [{"kind": "service", "serviceName": "web", "revisionName": "web-001",
                                "digests": {"web": fp(1)}, "creationTimestamp": 1_700_000_000},
                               {"kind": "job", "revisionName": "", "jobName": "migrate", "digests": {"job": fp(40)},
                                "creationTimestamp": 1_700_000_000}]})
    server = make_env("server")
    ingest(server, {"artifacts": [{"digests": {"web": fp(1)}, "creationTimestamp": 1_700_000_000},
                                  {"digests": {"db": fp(4)}}]})
    return {env.name: env for env in (k1, k2, ecs, run, server)}


def snapshots_of(envs):
    return [selectors.resolve_snapshot(env, f"#{index}") for env in envs.values()
            for index in range(1, env.last_snapshot_index + 1)]


def test_sql_diff_equals_python_diff(journal, monkeypatch):
    """Every ordered pair of snapshots (same and other environments), with and without the unchanged ones:
    PostgreSQL's one-query diff gives what the portable Python diff gives (SQLite's), exactly."""
    snapshots = snapshots_of(journal)
    by_sql = {(a.pk, b.pk, unchanged): selectors.diff_snapshots(a, b, unchanged)
              for a, b, unchanged in product(snapshots, snapshots, (False, True))}
    monkeypatch.setattr(selectors, "_diff_entries", selectors._diff_entries_python)
    for (a, b, unchanged) in product(snapshots, snapshots, (False, True)):
        python = selectors.diff_snapshots(a, b, unchanged)
        # the same keys in the same order, too (the API renders them as they are)
        assert json.dumps(by_sql[(a.pk, b.pk, unchanged)], default=str) == json.dumps(python, default=str), (a, b)


def summary(items):
    return [(i["name"], i["fingerprint"], i.get("fingerprint1"), i["s1_instance_count"], i["s2_instance_count"],
             i["pods"]) for i in items]


def test_diff_of_a_k8s_history(journal):
    k1 = journal["k1"]
    one, two = selectors.resolve_snapshot(k1, "#1"), selectors.resolve_snapshot(k1, "#2")
    diff = selectors.diff_snapshots(one, two, include_unchanged=True)
    assert diff["snapshot1"]["snapshot_id"] == "k1#1" and diff["snapshot2"]["snapshot_id"] == "k1#2"
    # sorted by (name, fingerprint) in code-point order: "Beta" < "alpha" < ... < "ünï"
    assert summary(diff["only_in_1"]) == [("worker", fp(3), None, 1, 0, ["p3"]), ("zeta", fp(20), None, 1, 0, ["p9"])]
    assert summary(diff["only_in_2"]) == [("lib", fp(9), None, 0, 2, ["p13", "p14"]),
                                          ("new", fp(10), None, 0, 1, ["p15"])]
    # per name, the n-th fingerprint only in 1 pairs with the n-th only in 2 (lib: 6 → 8; 9 is new)
    assert summary(diff["changed"]) == [
        ("alpha", fp(24), fp(21), 1, 1, ["p10"]), ("lib", fp(8), fp(6), 1, 1, ["p12"]),
        ("web", fp(7), fp(1), 2, 2, ["p5", "p6"]), ("ünï", fp(25), fp(23), 1, 1, ["p11"])]
    assert [c["fingerprint2"] for c in diff["changed"]] == [c["fingerprint"] for c in diff["changed"]]
    assert summary(diff["scaled"]) == [("envoy", fp(2), None, 3, 2, ["p5", "p6"])]  # where it runs now
    assert summary(diff["unchanged"]) == [("Beta", fp(22), None, 1, 1, []), ("db", fp(4), None, 1, 1, []),
                                          ("lib", fp(5), None, 1, 1, [])]
    web = diff["changed"][2]
    assert list(web) == ["name", "fingerprint", "sha256", "s1_instance_count", "s2_instance_count", "running_since",
                         "most_recent_timestamp", "pods", "fingerprint1", "fingerprint2"]
    assert web["running_since"] == two.created_at  # snapshot 2's entry started with snapshot 2
    assert web["most_recent_timestamp"] == int(two.created_at.timestamp())
    gone = diff["only_in_1"][0]
    assert gone["running_since"] == one.created_at and gone["running_since"].tzinfo == UTC
    assert "unchanged" not in selectors.diff_snapshots(one, two)
    same = selectors.diff_snapshots(two, two)
    assert same["only_in_1"] == same["only_in_2"] == same["changed"] == same["scaled"] == []


def test_diff_instance_names_by_type(journal):
    ecs, run, server, k2 = (journal[n] for n in ("e1", "run", "server", "k2"))
    upgrade = selectors.diff_snapshots(selectors.resolve_snapshot(ecs, "#1"), selectors.resolve_snapshot(ecs, "#2"))
    assert summary(upgrade["changed"]) == [("api", fp(31), fp(30), 1, 1, ["arn:3"])]
    assert summary(upgrade["scaled"]) == [("web", fp(1), None, 1, 2, ["arn:2", "arn:4"])]
    # Cloud Run revisions by name; a job's empty revision name is no name; server instances have none
    versus = selectors.diff_snapshots(selectors.resolve_snapshot(run, "-1"), selectors.resolve_snapshot(server, "-1"))
    assert summary(versus["only_in_1"]) == [("job", fp(40), None, 1, 0, [])]
    assert summary(versus["only_in_2"]) == [("db", fp(4), None, 0, 1, [])]
    assert summary(versus["changed"]) == []
    assert summary(versus["scaled"]) == []
    across = selectors.diff_snapshots(selectors.resolve_snapshot(server, "-1"), selectors.resolve_snapshot(k2, "-1"))
    assert summary(across["only_in_1"]) == []
    assert summary(across["only_in_2"]) == [("lib", fp(5), None, 0, 1, ["q3"]), ("lib", fp(6), None, 0, 1, ["q2"])]
    assert summary(across["changed"]) == [("web", fp(7), fp(1), 1, 1, ["q1"])]
    assert summary(across["scaled"]) == [("db", fp(4), None, 1, 2, ["q4", "q5"])]


def test_diff_renderer_matches_drf_json():
    """The msgspec renderer's bytes are DRF's compact JSON, U+2028/U+2029 escaped, with or without them."""
    moment = datetime(2026, 11, 29, 7, 4, 33, 904462, tzinfo=UTC)
    for text in ("plain ascii", "em — dash", "line\u2028separator and\u2029paragraph", "ünï €"):
        data = {"name": text, "running_since": moment, "pods": [text], "count": 3, "none": None}
        assert SnapshotJSONRenderer().render(data) == JSONRenderer().render(data)
