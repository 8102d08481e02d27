"""Migration 0004: evaluations stored when "no policy" meant "compliant" become unknown (NULL), their
artifacts counted as unknown, the ``changed`` flags recomputed with unknown as its own state; the
tables stay append-only; and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from policies.models import SnapshotCompliance
from snapshots import hooks

from .helpers import fp, ingest, make_env

BEFORE = [("policies", "0003_compliance_decision_ranges")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes("policies")


@pytest.mark.django_db(transaction=True)
def test_no_policy_evaluations_become_unknown_and_back(org, monkeypatch):
    monkeypatch.setattr(hooks, "_after_snapshot", [])  # the old rows are written by hand below
    env = make_env(org)
    snapshots = [ingest(env, {"a:1": fp(1), f"x:{n}": fp(10 + n)}) for n in range(1, 5)]
    # #1 no policy (then "compliant"), #2 a policy: non-compliant, #3 policy detached, #4 no policy.
    old = [(True, [], 2, 0), (False, [{"name": "p", "version": 1}], 1, 1), (True, [], 2, 0), (True, [], 2, 0)]
    old_apps = migrate(BEFORE)
    try:
        Old = old_apps.get_model("policies", "SnapshotCompliance")
        for snapshot, (compliant, applied, good, bad) in zip(snapshots, old, strict=True):
            Old.objects.create(
                org_id=org.pk, environment_id=env.pk, snapshot_id=snapshot.pk, snapshot_index=snapshot.index,
                snapshot_at=snapshot.created_at, compliant=compliant, changed=snapshot.index in (1, 2, 3),
                applied_policies=applied, compliant_count=good, non_compliant_count=bad)
    finally:
        migrate(latest())

    rows = list(SnapshotCompliance.objects.filter(environment=env).order_by("snapshot_index")
                .values_list("compliant", "changed", "compliant_count", "unknown_count"))
    assert rows == [(None, True, 0, 2), (False, True, 1, 0), (None, True, 0, 2), (None, False, 0, 2)]
    with pytest.raises(Exception, match="append-only"):  # the triggers are back
        SnapshotCompliance.objects.filter(environment=env).update(compliant=True)

    old_apps = migrate(BEFORE)  # and back: the old meaning again
    try:
        Old = old_apps.get_model("policies", "SnapshotCompliance")
        assert list(Old.objects.filter(environment_id=env.pk).order_by("snapshot_index")
                    .values_list("compliant", "changed", "compliant_count")) == [
            (True, True, 2), (False, True, 1), (True, True, 2), (True, False, 2)]
    finally:
        migrate(latest())
