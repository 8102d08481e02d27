"""Compliance decisions are stored as validity ranges: a snapshot writes decision rows only for what
changed, and every reader answers exactly what a full evaluation of each snapshot gave at its time."""

import json
from datetime import timedelta

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, transaction
from django.utils import timezone

from policies import services
from policies.models import AllowlistEntry, ComplianceDecision, DecisionRecheck, SnapshotCompliance

from .helpers import CTX, POLICY_HEAD, PROVENANCE_POLICY, fp, ingest, make_env, report_flow_artifact

pytestmark = pytest.mark.django_db

TESTS_POLICY = POLICY_HEAD + "artifacts:\n  provenance:\n    required: true\n  attestations:\n    - type: junit\n"


def full_evaluation(snapshot) -> list[dict]:
    """What the evaluation used to store for a snapshot: every artifact's decision, decided now (or
    nothing when no policy applies and nothing running is allowlisted)."""
    preview = services.preview_snapshot(snapshot)
    if not preview["applied_policies"] and not any(d["allowlisted"] for d in preview["artifacts"]):
        return []
    return json.loads(json.dumps(preview["artifacts"]))


def snapshot_answer(client, index: int) -> str:
    """The API's snapshot answer, without the fields that say where it stands among later snapshots."""
    answer = client.get(f"/api/v2/snapshots/acme/prod/{index}").json()
    for moving in ("is_latest", "next_snapshot_timestamp"):
        answer.pop(moving)
    for artifact in answer["artifacts"]:  # authorization is read now (today's provenance and allowlist)
        artifact.pop("authorized", None)
        artifact.pop("authorization", None)
    return json.dumps(answer)


def page_table(client, index: int) -> bytes:
    """The decisions table of the snapshot's compliance page (the rest carries times and tokens)."""
    page = client.get(f"/o/acme/policies/environments/prod/snapshots/{index}/")
    assert page.status_code == 200
    return page.content[page.content.index(b"<table>"):page.content.index(b"</table>")]


def test_decision_rows_per_snapshot_follow_changes_not_size(org, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    running = {f"svc-{n}:1": fp(n) for n in range(1, 41)}
    first = ingest(env, running, capture=django_capture_on_commit_callbacks)
    assert ComplianceDecision.objects.filter(environment=env, from_index=first.index).count() == 40
    for step in range(2, 5):  # one artifact replaced per snapshot: 1 range closed, 1 opened
        running.pop(f"svc-{step - 1}:1")
        running[f"new-{step}:1"] = fp(100 + step)
        snapshot = ingest(env, running, capture=django_capture_on_commit_callbacks)
        assert ComplianceDecision.objects.filter(environment=env, from_index=snapshot.index).count() == 1
        assert ComplianceDecision.objects.filter(environment=env, to_index=snapshot.index).count() == 1
        stored = SnapshotCompliance.objects.get(snapshot=snapshot)
        assert (stored.non_compliant_count, stored.compliant_count) == (40, 0)
        assert [d["name"] for d in stored.artifacts] == sorted(running)
    assert ComplianceDecision.objects.filter(environment=env).count() == 43


def test_every_reader_answers_what_a_full_evaluation_gave_each_snapshot(
        org, owner_api, django_capture_on_commit_callbacks):
    from evidence.models import Attestation

    env = make_env(org)
    web = report_flow_artifact(org, "web-flow", fp(1), name="web")
    history, counts = [], {}

    def step(snapshot):
        assert snapshot is not None
        statuses = [d["status"] for d in services.preview_snapshot(snapshot)["artifacts"]]
        counts[snapshot.index] = tuple(statuses.count(s) for s in ("compliant", "non-compliant", "unknown"))
        history.append((snapshot, full_evaluation(snapshot),
                        snapshot_answer(owner_api, snapshot.index),
                        page_table(owner_api, snapshot.index)))

    def reevaluate(reason):
        step(services.reevaluate(env.pk, reason, CTX))

    step(ingest(env, {"web:1": fp(1), "rogue:1": fp(2), "db:1": fp(3)}, capture=django_capture_on_commit_callbacks))
    services.save_policy(CTX, org, "needs-tests", TESTS_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-tests"])
    reevaluate("attached")
    with django_capture_on_commit_callbacks(execute=False):
        Attestation.objects.create(org=org, flow=web.flow, trail=web.trail, artifact=web, artifact_fingerprint=fp(1),
                                   name="unit", type="junit", is_compliant=True)
    reevaluate("evidence")
    with django_capture_on_commit_callbacks(execute=False):
        entry = services.add_allowlist_entry(CTX, org, env, fp(2), "rogue:1", "vendor agent",
                                             expires_at=timezone.now() + timedelta(hours=1))
        services.add_allowlist_entry(CTX, org, env, fp(9), "later:1", "not running yet")
    step(ingest(env, {"web:1": fp(1), "rogue:1": fp(2), "db:1": fp(3), "later:1": fp(9)},
                capture=django_capture_on_commit_callbacks))
    AllowlistEntry.objects.filter(pk=entry.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # time passed
    with django_capture_on_commit_callbacks(execute=False):
        services.handle_expired_allowlist_entries()
    reevaluate("allowlist entry expired")
    with django_capture_on_commit_callbacks(execute=False):
        services.save_policy(CTX, org, "needs-tests", PROVENANCE_POLICY, comment="provenance only")
    reevaluate("policy v2")
    step(ingest(env, {"web:1": fp(1), "db:1": fp(3), "later:1": fp(9)}, capture=django_capture_on_commit_callbacks))
    with django_capture_on_commit_callbacks(execute=False):
        services.detach_policies(CTX, org, env, ["needs-tests"])
    reevaluate("detached")
    step(ingest(env, {"web:1": fp(1), "db:1": fp(3)}, capture=django_capture_on_commit_callbacks))

    assert [s.index for s, *_ in history] == list(range(1, 10))
    for snapshot, expected, api_answer, page in history:
        stored = SnapshotCompliance.objects.get(snapshot=snapshot)
        assert stored.artifacts == expected, snapshot.index
        assert (stored.compliant_count, stored.non_compliant_count, stored.unknown_count) == counts[snapshot.index]
        assert snapshot_answer(owner_api, snapshot.index) == api_answer
        assert page_table(owner_api, snapshot.index) == page
    assert [SnapshotCompliance.objects.get(snapshot=s).compliant for s, *_ in history] == [
        None, False, False, False, False, False, False, None, None]  # no policy (1; 8-9 detached): unknown
    by_index = {s.index: expected for s, expected, *_ in history}
    assert {d["name"]: d["status"] for d in by_index[3]} == {"db:1": "non-compliant", "rogue:1": "non-compliant",
                                                             "web:1": "compliant"}
    assert [d["allowlisted"] for d in by_index[4] if d["name"] == "rogue:1"] == [True]
    assert [d["name"] for d in by_index[8] if d["allowlisted"]] == ["later:1"]  # detached: the allowlist stays
    assert by_index[9] == []  # nothing allowlisted runs: compact again
    assert not ComplianceDecision.objects.filter(environment=env, to_index=None).exists()


def test_evidence_is_decided_again_at_the_next_snapshot_even_without_a_reevaluation(
        org, django_capture_on_commit_callbacks):
    from evidence.models import Attestation

    env = make_env(org)
    services.save_policy(CTX, org, "needs-tests", TESTS_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-tests"])
        web = report_flow_artifact(org, "web-flow", fp(1), name="web")
    ingest(env, {"web:1": fp(1), "db:1": fp(3)}, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):  # the re-evaluation task never runs
        Attestation.objects.create(org=org, flow=web.flow, trail=web.trail, artifact=web, artifact_fingerprint=fp(1),
                                   name="unit", type="junit", is_compliant=True)
    assert list(DecisionRecheck.objects.filter(environment=env).values_list("fingerprint", flat=True)) == [fp(1)]
    second = ingest(env, {"web:1": fp(1), "db:1": fp(3), "cache:1": fp(4)}, capture=django_capture_on_commit_callbacks)
    stored = SnapshotCompliance.objects.get(snapshot=second)
    assert {d["name"]: d["status"] for d in stored.artifacts} == {
        "cache:1": "non-compliant", "db:1": "non-compliant", "web:1": "compliant"}
    assert stored.artifacts == full_evaluation(second)
    assert not DecisionRecheck.objects.filter(environment=env).exists()  # consumed
    # web:1's new decision and cache:1's first one; db:1's range stays open
    assert ComplianceDecision.objects.filter(environment=env, from_index=second.index).count() == 2


def test_decision_ranges_are_append_only(org, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    ingest(env, {"rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    row = ComplianceDecision.objects.get(environment=env)
    rows = ComplianceDecision.objects.filter(pk=row.pk)
    for change in ({"status": "compliant"}, {"from_index": 5}):
        with pytest.raises((IntegrityError, InternalError, ProgrammingError)), transaction.atomic():
            rows.update(**change)
    with pytest.raises((IntegrityError, InternalError, ProgrammingError)), transaction.atomic():
        rows.delete()
    assert rows.update(to_index=2) == 1  # closing a range: allowed once
    with pytest.raises((IntegrityError, InternalError, ProgrammingError)), transaction.atomic():
        rows.update(to_index=3)


def test_a_flow_tag_change_is_decided_again_at_the_next_snapshot(org, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.save_policy(CTX, org, "high-risk-needs-tests", POLICY_HEAD + (
        "artifacts:\n  attestations:\n    - type: junit\n      if: ${{ flow.tags.risk == \"high\" }}\n"))
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["high-risk-needs-tests"])
        web = report_flow_artifact(org, "web-flow", fp(1), name="web", tags={"risk": "low"})
    first = ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    assert SnapshotCompliance.objects.get(snapshot=first).compliant is True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        web.flow.tags = {"risk": "high"}
        web.flow.save()
    assert callbacks == []  # only marked, as before no re-evaluation is asked for a flow change
    second = ingest(env, {"web:1": fp(1), "db:1": fp(3)}, capture=django_capture_on_commit_callbacks)
    stored = SnapshotCompliance.objects.get(snapshot=second)
    assert stored.artifacts == full_evaluation(second)
    assert [d["status"] for d in stored.artifacts if d["name"] == "web:1"] == ["non-compliant"]
