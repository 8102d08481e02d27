"""Ingest: the change-only rule, validity ranges (O(k) rows), scaling, events, idempotency, journal."""

import pytest

from journal.verify import verify_journal
from snapshots import selectors
from snapshots.models import Report, Snapshot, SnapshotEntry, SnapshotEvent
from snapshots.services.ingest import append_reevaluation_snapshot, ingest_report
from snapshots.services.reports import accept_report
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db


def test_first_report_creates_snapshot_one(make_env, ingest):
    env = make_env()
    outcome = ingest(env, server_report(fp(1), fp(2)))
    assert outcome.status == "snapshot"
    snapshot = outcome.snapshot
    assert (snapshot.index, snapshot.artifact_count) == (1, 2)
    artifacts = selectors.snapshot_artifacts(snapshot)
    assert [(a["name"], a["fingerprint"], a["annotation"]["type"]) for a in artifacts] == [
        ("app-0", fp(1), "started"), ("app-1", fp(2), "started")]
    assert env.last_snapshot_index == 1 and env.current_artifact_count == 2


def test_unchanged_report_is_a_heartbeat_only(make_env, ingest):
    env = make_env()
    ingest(env, server_report(fp(1)))
    rows = SnapshotEntry.objects.count()
    first_seen = env.last_report_at
    outcome = ingest(env, server_report(fp(1)))
    assert outcome.status == "unchanged" and outcome.snapshot is None
    assert Snapshot.objects.filter(environment=env).count() == 1
    assert SnapshotEntry.objects.count() == rows
    assert env.last_report_at >= first_seen


def test_k_changes_write_k_rows_and_old_snapshots_stay_readable(make_env, ingest):
    env = make_env()
    base = [fp(i) for i in range(1, 101)]
    ingest(env, server_report(*base))
    before = SnapshotEntry.objects.filter(environment=env).count()
    changed = base[:]
    changed[10] = fp(1000)  # app-10 upgraded
    ingest(env, server_report(*changed))
    assert SnapshotEntry.objects.filter(environment=env).count() == before + 1  # one opened, one closed
    one, two = Snapshot.objects.filter(environment=env).order_by("index")
    assert {a["fingerprint"] for a in selectors.snapshot_artifacts(one)} == set(base)
    assert {a["fingerprint"] for a in selectors.snapshot_artifacts(two)} == set(changed)
    kinds = sorted(SnapshotEvent.objects.filter(environment=env, snapshot_index=2).values_list("kind", "fingerprint"))
    assert kinds == [("exited", fp(11)), ("started", fp(1000))]
    exited = [a for a in selectors.snapshot_artifacts(two, include_exited=True) if a["annotation"]["type"] == "exited"]
    assert [(a["name"], a["fingerprint"], a["annotation"]["now"]) for a in exited] == [("app-10", fp(11), 0)]


def test_scaling_makes_a_snapshot_only_with_include_scaling(make_env, ingest):
    plain = make_env("plain")
    scaling = make_env("scaling", include_scaling=True)
    for env in (plain, scaling):
        ingest(env, server_report(fp(1)))
        ingest(env, server_report(fp(1), fp(1), names=["app", "app"]) if False else
               {"artifacts": [{"digests": {"app-0": fp(1)}}, {"digests": {"app-0": fp(1)}}]})
    assert plain.last_snapshot_index == 1
    assert scaling.last_snapshot_index == 2
    artifact = selectors.snapshot_artifacts(selectors.latest_snapshot(scaling))[0]
    assert artifact["annotation"] == {"type": "scaled", "was": 1, "now": 2}
    first = Snapshot.objects.get(environment=scaling, index=1)
    assert artifact["running_since"] == first.created_at  # carried over when scaling
    assert SnapshotEvent.objects.filter(environment=scaling, kind="scaled").count() == 1


def test_second_delivery_changes_nothing(make_env, ingest):
    env = make_env()
    outcome = ingest(env, server_report(fp(1)))
    again = ingest_report(outcome.report_id)
    assert again.pk == outcome.pk
    assert Snapshot.objects.filter(environment=env).count() == 1


def test_missing_report_is_a_clean_no_op():
    assert ingest_report(987654321) is None


def test_snapshot_leaves_verify_and_chain(org, make_env, ingest):
    env = make_env()
    ingest(env, server_report(fp(1)))
    ingest(env, server_report(fp(2)))
    one, two = Snapshot.objects.filter(environment=env).order_by("index")
    assert two.prev_hash == one.hash
    assert verify_journal(org) is None


def test_reevaluation_snapshot_writes_no_entries(ctx, make_env, ingest):
    env = make_env()
    ingest(env, server_report(fp(1), fp(2)))
    rows = SnapshotEntry.objects.count()
    snapshot = append_reevaluation_snapshot(ctx, env, "policy changed")
    assert snapshot.index == 2 and snapshot.reason == "reevaluation"
    assert SnapshotEntry.objects.count() == rows
    assert [a["annotation"]["type"] for a in selectors.snapshot_artifacts(snapshot)] == ["unchanged", "unchanged"]
    assert append_reevaluation_snapshot(ctx, make_env("empty"), "x") is None


def test_fingerprint_history_spans_environments(org, make_env, ingest):
    staging, prod = make_env("staging"), make_env("prod")
    ingest(staging, server_report(fp(7)))
    ingest(prod, server_report(fp(7)))
    ingest(staging, server_report(fp(8)))
    history = selectors.fingerprint_history(org, fp(7))
    by_env = {h["environment"]: h for h in history}
    assert by_env["staging"]["from_index"] == 1 and by_env["staging"]["to_index"] == 2
    assert by_env["staging"]["to_time"] is not None and not by_env["staging"]["running"]
    assert by_env["prod"]["to_index"] is None and by_env["prod"]["running"]


def test_same_set_in_another_order_is_unchanged(make_env, ingest):
    env = make_env()
    ingest(env, server_report(fp(1), fp(2)))
    reordered = {"artifacts": list(reversed(server_report(fp(1), fp(2))["artifacts"]))}
    assert ingest(env, reordered).status == "unchanged"
    assert ingest(env, server_report(fp(1), fp(2))).status == "unchanged"  # byte-identical: not even parsed
    assert Snapshot.objects.filter(environment=env).count() == 1


def test_fingerprint_with_trailing_newline_is_rejected(make_env, ctx):
    from snapshots.report_bodies import ReportInvalid

    env = make_env()
    with pytest.raises(ReportInvalid) as error:
        accept_report(ctx, env, "server", b'{"artifacts": [{"digests": {"a": "' + fp(1).encode() + b'\\n"}}]}')
    assert "artifacts[0].digests.a" in error.value.fields


def test_large_values_are_stored_lz4_compressed(make_env, ingest):
    """Migration 0004: report bodies and instance lists use lz4 (faster to write and read than pglz)."""
    from django.db import connection

    env = make_env()
    pods = [{"digests": {"app": fp(1)}, "creationTimestamp": 1_700_000_000 + i} for i in range(500)]
    ingest(env, {"artifacts": pods})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(payload) FROM snapshots_report WHERE environment_id = %s",
                       [env.pk])
        assert cursor.fetchone() == ("lz4",)
        cursor.execute("SELECT pg_column_compression(instances) FROM snapshots_snapshotentry "
                       "WHERE environment_id = %s", [env.pk])
        assert cursor.fetchone() == ("lz4",)


def test_nul_characters_and_absurd_timestamps_are_rejected(make_env, ctx):
    from snapshots.report_bodies import ReportInvalid

    env = make_env()
    with pytest.raises(ReportInvalid):
        nul = b'{"artifacts": [{"digests": {"a\\u0000": "' + fp(1).encode() + b'"}}]}'
        accept_report(ctx, env, "server", nul)
    with pytest.raises(ReportInvalid) as error:
        huge = b'{"artifacts": [{"digests": {"a": "' + fp(1).encode() + b'"}, "creationTimestamp": 1e300}]}'
        accept_report(ctx, env, "server", huge)
    assert "artifacts[0].creationTimestamp" in error.value.fields


def test_a_lone_surrogate_escape_is_refused_at_the_door_and_a_pair_is_text(make_env, ctx, api, org, token_for):
    """JSON allows "\\ud800" alone, but it is no character: such a body could be stored and never ingested
    (its instances cannot be encoded as UTF-8). A pair ("\\ud83d\\ude80", 🚀) is one character and fine."""
    make_env(name="prod")
    agent = api(token=token_for(org))
    lone = b'{"artifacts": [{"digests": {"app\\ud800": "' + fp(1).encode() + b'"}, "creationTimestamp": 1}]}'
    response = agent.put("/api/v2/environments/acme/prod/report/server", data=lone, content_type="application/json")
    assert response.status_code == 400 and "surrogate" in response.json()["error"]["message"]
    assert not Report.objects.filter(environment__name="prod").exists()
    pair = b'{"artifacts": [{"digests": {"app\\ud83d\\ude80": "' + fp(1).encode() + b'"}, "creationTimestamp": 1}]}'
    response = agent.put("/api/v2/environments/acme/prod/report/server", data=pair, content_type="application/json")
    assert response.status_code == 201, response.content
    ingest_report(response.json()["id"])
    assert SnapshotEntry.objects.get(environment__name="prod").name == "app\U0001f680"
