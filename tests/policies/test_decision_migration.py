"""Migration 0003 turns the per-snapshot decision lists stored until now into validity ranges (and back)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from policies.models import ComplianceDecision, SnapshotCompliance
from snapshots import hooks

from .helpers import fp, ingest, make_env

BEFORE = [("policies", "0002_append_only")]

def latest():
    """Migration 0003 and every later one of the app (the models the assertions read are the latest)."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes("policies")


def decision(name, fingerprint, status, allowlist_entry=None):
    return {"name": name, "fingerprint": fingerprint, "provenance": None, "status": status,
            "compliant": status == "compliant", "allowlisted": allowlist_entry is not None,
            "allowlist_entry": allowlist_entry, "has_provenance": False, "policy_decisions": [],
            "reasons_for_incompliance": [] if status == "compliant" else [f"p: {name} is {status}"]}


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_stored_decision_lists_become_ranges_and_back(org, monkeypatch):
    monkeypatch.setattr(hooks, "_after_snapshot", [])  # the old rows are written by hand below
    env = make_env(org)
    snapshots = [ingest(env, {"a:1": fp(1), "b:1": fp(2), "c:1": fp(3), f"x:{n}": fp(10 + n)}) for n in range(1, 6)]
    a, b_bad, b_good = decision("a:1", fp(1), "compliant"), decision("b:1", fp(2), "non-compliant"), \
        decision("b:1", fp(2), "compliant", {"id": 7, "reason": "vendor", "expires_at": None})
    c = decision("c:1", fp(3), "unknown")
    lists = [[a, b_bad], [a, b_bad], [a, b_good, c], [], [a, c]]  # #4 stored compactly (no policy then)
    old_apps = migrate(BEFORE)
    try:
        Old = old_apps.get_model("policies", "SnapshotCompliance")
        for snapshot, artifacts in zip(snapshots, lists):
            Old.objects.create(
                org_id=org.pk, environment_id=env.pk, snapshot_id=snapshot.pk, snapshot_index=snapshot.index,
                snapshot_at=snapshot.created_at, compliant=all(d["compliant"] for d in artifacts), changed=False,
                applied_policies=[{"name": "p", "version": 1}] if artifacts else [], artifacts=artifacts,
                compliant_count=sum(d["compliant"] for d in artifacts),
                non_compliant_count=sum(not d["compliant"] for d in artifacts))
    finally:
        migrate(latest())

    ranges = sorted(ComplianceDecision.objects.filter(environment=env)
                    .values_list("name", "status", "from_index", "to_index"))
    assert ranges == [("a:1", "compliant", 1, 4), ("a:1", "compliant", 5, None), ("b:1", "compliant", 3, 4),
                      ("b:1", "non-compliant", 1, 3), ("c:1", "unknown", 3, 4), ("c:1", "unknown", 5, None)]
    assert ComplianceDecision.objects.get(name="b:1", from_index=3).basis == {
        "policies": [{"name": "p", "version": 1}], "allowlist_entry": 7}
    stored = {row.snapshot_index: row.artifacts for row in SnapshotCompliance.objects.filter(environment=env)}
    assert stored == {index: artifacts for index, artifacts in enumerate(lists, start=1)}
    with pytest.raises(Exception, match="append-only"):  # still append-only after the column went
        SnapshotCompliance.objects.filter(environment=env).update(compliant=True)

    old_apps = migrate(BEFORE)  # and back: every evaluation gets its list again
    try:
        Old = old_apps.get_model("policies", "SnapshotCompliance")
        assert dict(Old.objects.filter(environment_id=env.pk).values_list("snapshot_index", "artifacts")) == stored
    finally:
        migrate(latest())
