"""Evaluations of one environment are stored in snapshot order, whatever order workers run them in."""

import pytest

from policies import services
from policies.models import SnapshotCompliance
from snapshots import hooks

from .helpers import CTX, PROVENANCE_POLICY, fp, ingest, make_env

pytestmark = pytest.mark.django_db


def test_a_later_snapshot_evaluated_first_still_compares_with_its_true_predecessor(
        org, django_capture_on_commit_callbacks, monkeypatch):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    # Two snapshots whose after-snapshot hooks have not run yet (as when two workers race).
    with monkeypatch.context() as patch:
        patch.setattr(hooks, "_after_snapshot", [])
        first = ingest(env, {"rogue:1": fp(2)})
        second = ingest(env, {"rogue:1": fp(2), "rogue:2": fp(3)})
    assert not SnapshotCompliance.objects.filter(environment=env).exists()

    services.evaluate_snapshot(second.pk)  # the later hook happens to run first

    rows = {row.snapshot_index: row for row in SnapshotCompliance.objects.filter(environment=env)}
    assert set(rows) == {first.index, second.index}
    assert rows[first.index].compliant is False and rows[first.index].changed is True
    # Still non-compliant: not a change, so no second "environment became non-compliant" alert.
    assert rows[second.index].compliant is False and rows[second.index].changed is False
    assert services.evaluate_snapshot(first.pk) == rows[first.index]  # idempotent
