"""Policies API as the kosli CLI calls it, the allowlist, snapshot reads carrying compliance,
re-evaluation appending a snapshot, the assert endpoint, roles and other orgs."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from policies import services
from policies.models import PolicyVersion, SnapshotCompliance
from snapshots.models import Snapshot
from tenants.choices import Role
from tests.policies.helpers import CTX, POLICY_HEAD, PROVENANCE_POLICY, fp, ingest, make_env, report_flow_artifact

pytestmark = pytest.mark.django_db



def besides_checkpoints(callbacks):
    """The on-commit callbacks other than the journal's checkpoint scheduling (every leaf asks for one)."""
    return [c for c in callbacks if c.__name__ != "schedule_checkpoint_on_commit"]

def upload(client, name, content, comment="", org="acme"):
    payload = json.dumps({"name": name, "description": "prod rules", "comment": comment, "type": "env"})
    return client.put(f"/api/v2/policies/{org}", {
        "payload": payload, "policy_file": SimpleUploadedFile("policy.yml", content.encode(), "application/x-yaml"),
    }, format="multipart")


def test_create_policy_then_new_versions(org, owner_api):
    created = upload(owner_api, "prod-rules", PROVENANCE_POLICY)
    assert created.status_code == 201, created.json()
    assert created.json()["latest_version"] == 1
    same = upload(owner_api, "prod-rules", PROVENANCE_POLICY)
    assert same.status_code == 200 and same.json()["latest_version"] == 1
    changed = upload(owner_api, "prod-rules", POLICY_HEAD + "artifacts:\n  trail-compliance:\n    required: true\n",
                     comment="trail too")
    assert changed.status_code == 200 and changed.json()["latest_version"] == 2
    detail = owner_api.get("/api/v2/policies/acme/prod-rules").json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["versions"][0]["comment"] == "trail too"
    assert detail["versions"][1]["content"] == PROVENANCE_POLICY  # old versions stay readable
    assert [p["name"] for p in owner_api.get("/api/v2/policies/acme").json()] == ["prod-rules"]
    actions = list(AuditEvent.objects.filter(org=org).values_list("action", flat=True))
    assert actions.count("policy.created") == 1 and actions.count("policy.versioned") == 1


def test_invalid_policy_is_a_400_with_the_line(org, owner_api):
    answer = upload(owner_api, "bad", POLICY_HEAD + "artifacts:\n  provenance:\n    required: sometimes\n")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "line 4" in error["message"] and "artifacts.provenance.required" in error["message"]
    assert error["fields"]["policy_file"] == ["line 4: artifacts.provenance.required: must be true or false"]
    bad_payload = owner_api.put("/api/v2/policies/acme", {"payload": "{nope", "policy_file": SimpleUploadedFile(
        "p.yml", PROVENANCE_POLICY.encode())}, format="multipart")
    assert bad_payload.status_code == 400 and "payload" in bad_payload.json()["error"]["fields"]
    bad_name = upload(owner_api, "Bad Name!", PROVENANCE_POLICY)
    assert bad_name.status_code == 400 and "payload.name" in bad_name.json()["error"]["fields"]
    assert not PolicyVersion.objects.exists()


def test_attach_and_detach_are_audited(org, owner_api, django_capture_on_commit_callbacks):
    make_env(org)
    upload(owner_api, "prod-rules", PROVENANCE_POLICY)
    url = "/api/v2/environments/acme/prod/policies"
    with django_capture_on_commit_callbacks(execute=False):
        attached = owner_api.post(url, {"policy_names": ["prod-rules"]}, format="json")
    assert attached.status_code == 200 and attached.json()["policies"] == ["prod-rules"]
    assert owner_api.get("/api/v2/policies/acme/prod-rules").json()["environments"] == ["prod"]
    missing = owner_api.post(url, {"policy_names": ["nope"]}, format="json")
    assert missing.status_code == 404 and "policy_names" in missing.json()["error"]["fields"]
    with django_capture_on_commit_callbacks(execute=False):
        detached = owner_api.delete(url, {"policy_names": ["prod-rules"]}, format="json")
    assert detached.status_code == 200 and detached.json()["policies"] == []
    actions = set(AuditEvent.objects.filter(org=org).values_list("action", flat=True))
    assert {"policy.attached", "policy.detached"} <= actions
    assert owner_api.post("/api/v2/environments/acme/nope/policies", {"policy_names": ["prod-rules"]},
                          format="json").status_code == 404


def test_snapshot_read_carries_compliance(org, owner_api, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    report_flow_artifact(org, "web-flow", fp(1), name="web")
    snapshot = ingest(env, {"web:1": fp(1), "rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    data = owner_api.get(f"/api/v2/snapshots/acme/prod/{snapshot.index}").json()
    assert data["compliant"] is False
    assert data["applied_policies"] == [{"name": "needs-provenance", "version": 1}]
    by_name = {a["name"]: a for a in data["artifacts"]}
    assert by_name["web:1"]["compliant"] is True and by_name["web:1"]["reasons_for_incompliance"] == []
    assert by_name["rogue:1"]["compliant"] is False
    assert by_name["rogue:1"]["reasons_for_incompliance"] == [
        "needs-provenance: artifact has no provenance (it is not part of any flow)"]
    assert by_name["rogue:1"]["policy_decisions"][0]["status"] == "NON-COMPLIANT"


def test_reevaluation_appends_a_snapshot_when_standing_changes(org, django_capture_on_commit_callbacks):
    env = make_env(org)
    snapshot = ingest(env, {"rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    assert SnapshotCompliance.objects.get(snapshot=snapshot).compliant is None  # no policy yet: unknown
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    assert len(besides_checkpoints(callbacks)) == 1  # a re-evaluation was requested on commit
    second = services.reevaluate(env.pk, "attached", CTX)
    assert second.index == snapshot.index + 1 and second.reason == "reevaluation"
    assert SnapshotCompliance.objects.get(snapshot=second).compliant is False
    assert SnapshotCompliance.objects.get(snapshot=second).changed is True
    assert services.reevaluate(env.pk, "nothing changed", CTX) is None  # same outcome: no new snapshot
    with django_capture_on_commit_callbacks(execute=False):
        entry = services.add_allowlist_entry(CTX, org, env, fp(2), "rogue:1", "vendor agent")
    third = services.reevaluate(env.pk, "allowlisted", CTX)
    compliance = SnapshotCompliance.objects.get(snapshot=third)
    assert compliance.compliant is True and compliance.artifacts[0]["allowlisted"] is True
    with django_capture_on_commit_callbacks(execute=False):
        services.remove_allowlist_entry(CTX, org, entry)
    assert SnapshotCompliance.objects.get(snapshot=services.reevaluate(env.pk, "removed", CTX)).compliant is False
    assert Snapshot.objects.filter(environment=env).count() == 4  # earlier snapshots were never rewritten
    assert [c.compliant for c in SnapshotCompliance.objects.filter(environment=env).order_by("snapshot_index")] == [
        None, False, True, False]
    from policies.selectors import compliance_series, non_compliant_periods

    periods = non_compliant_periods(env)
    assert [(p["from_index"], p["to_index"]) for p in periods] == [(2, 3), (4, None)]
    assert [row["compliant"] for row in compliance_series(env)] == [None, False, True, False]
    since = SnapshotCompliance.objects.get(environment=env, snapshot_index=2).snapshot_at
    assert [(p["from_index"], p["to_index"]) for p in non_compliant_periods(env, since=since)] == [(2, 3), (4, None)]


def test_allowlist_expiry(org, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
        services.add_allowlist_entry(CTX, org, env, fp(2), "rogue:1", "vendor agent",
                                     expires_at=timezone.now() + timedelta(hours=1))
    snapshot = ingest(env, {"rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    assert SnapshotCompliance.objects.get(snapshot=snapshot).compliant is True
    later = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.handle_expired_allowlist_entries(now=later) == 1
        assert services.handle_expired_allowlist_entries(now=later) == 0
    assert len(besides_checkpoints(callbacks)) == 1
    assert services.active_allowlist(env, now=later) == {}
    # evaluated at the later time, the artifact is no longer allowed
    _, decisions = services.evaluate_artifacts(org, env, [{"name": "rogue:1", "fingerprint": fp(2)}], now=later)
    assert decisions[0]["status"] == "non-compliant"


def test_allowlist_api(org, owner_api, django_capture_on_commit_callbacks):
    make_env(org)
    url = "/api/v2/allowlists/acme/prod"
    with django_capture_on_commit_callbacks(execute=False):
        created = owner_api.put(url, {"sha256": fp(7), "artifact_name": "dd-agent", "description": "vendor"},
                                format="json")
    assert created.status_code == 201 and created.json()["fingerprint"] == fp(7) and created.json()["active"]
    bad = owner_api.put(url, {"fingerprint": "ABC", "reason": "x"}, format="json")
    assert bad.status_code == 400 and "fingerprint" in bad.json()["error"]["fields"]
    past = owner_api.put(url, {"fingerprint": fp(8), "reason": "x", "expires_at": "2001-01-01T00:00:00Z"},
                         format="json")
    assert past.status_code == 400 and "expires_at" in past.json()["error"]["fields"]
    no_reason = owner_api.put(url, {"fingerprint": fp(8)}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    assert [e["fingerprint"] for e in owner_api.get(url).json()] == [fp(7)]
    with django_capture_on_commit_callbacks(execute=False):
        removed = owner_api.delete(f"{url}/{created.json()['id']}")
    assert removed.status_code == 200 and removed.json()["active"] is False
    assert owner_api.get(url).json() == [] and len(owner_api.get(f"{url}?all=1").json()) == 1
    actions = set(AuditEvent.objects.filter(org=org).values_list("action", flat=True))
    assert {"allowlist.added", "allowlist.removed"} <= actions


def test_assert_endpoint(org, owner_api, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    report_flow_artifact(org, "web-flow", fp(1), name="web")
    good = owner_api.get(f"/api/v2/asserts/acme/fingerprint/{fp(1)}?environment_name=prod").json()
    assert good["compliant"] is True and good["scope"] == "environment" and good["flow"] == "web-flow"
    assert good["policy_evaluations"][0]["policy_name"] == "needs-provenance"
    bad = owner_api.get(f"/api/v2/asserts/acme/fingerprint/{fp(2)}?environment_name=prod").json()
    assert bad["compliant"] is False and bad["reasons_for_incompliance"]
    assert bad["policy_evaluations"][0]["rule_evaluations"][0]["resolutions"] == [{"type": "missing_provenance"}]
    by_policy = owner_api.get(f"/api/v2/asserts/acme/fingerprint/{fp(2)}?policy_name=needs-provenance").json()
    assert by_policy["compliant"] is False and by_policy["scope"] == "policy"
    assert owner_api.get(f"/api/v2/asserts/acme/fingerprint/{fp(2)}").status_code == 404  # no flow reported it
    assert owner_api.get("/api/v2/asserts/acme/fingerprint/xyz?environment_name=prod").status_code == 400
    assert owner_api.get(f"/api/v2/asserts/acme/fingerprint/{fp(2)}?environment_name=nope").status_code == 404


def test_roles_and_other_orgs(org, other_org, api, member_of, token_for, django_capture_on_commit_callbacks):
    make_env(org)
    reader = api(user=member_of(org, Role.READER))
    assert reader.get("/api/v2/policies/acme").status_code == 200
    denied = upload(reader, "p", PROVENANCE_POLICY)
    assert denied.status_code == 403 and "policies.manage" in denied.json()["error"]["message"]
    member = api(user=member_of(org, Role.MEMBER))
    assert member.post("/api/v2/environments/acme/prod/policies", {"policy_names": ["p"]},
                       format="json").status_code == 403
    assert api(token=token_for(org, Role.SNAPSHOTTER)).get("/api/v2/policies/acme").status_code == 403
    admin = api(token=token_for(org, Role.ADMIN))
    assert upload(admin, "p", PROVENANCE_POLICY).status_code == 201
    globex = api(user=other_org.memberships.first().user)
    assert globex.get("/api/v2/policies/acme/p").status_code == 404
    assert globex.get("/api/v2/policies/globex/p").status_code == 404
    assert globex.post("/api/v2/environments/globex/prod/policies", {"policy_names": ["p"]},
                       format="json").status_code == 404
    assert globex.get("/api/v2/allowlists/globex/prod").status_code == 404
    assert globex.get(f"/api/v2/asserts/acme/fingerprint/{fp(1)}?environment_name=prod").status_code == 404


def test_new_evidence_reevaluates_where_the_artifact_runs(org, django_capture_on_commit_callbacks):
    from evidence.models import Attestation

    env = make_env(org)
    services.save_policy(CTX, org, "needs-tests", POLICY_HEAD + "artifacts:\n  attestations:\n    - type: junit\n")
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-tests"])
        artifact = report_flow_artifact(org, "web-flow", fp(1), name="web")
    snapshot = ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    assert SnapshotCompliance.objects.get(snapshot=snapshot).compliant is False
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        Attestation.objects.create(org=org, flow=artifact.flow, trail=artifact.trail, artifact=artifact,
                                   artifact_fingerprint=fp(1), name="unit", type="junit", is_compliant=True)
    assert len(callbacks) == 1  # the attestation asked for a re-evaluation of prod
    second = services.reevaluate(env.pk, "evidence: attestation", CTX)
    assert SnapshotCompliance.objects.get(snapshot=second).compliant is True


def test_reading_an_unevaluated_snapshot_writes_nothing(org, owner_api, django_capture_on_commit_callbacks,
                                                        monkeypatch):
    from snapshots import hooks

    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    monkeypatch.setattr(hooks, "_after_snapshot", [])  # as if the worker's hooks had not run yet
    snapshot = ingest(env, {"rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    data = owner_api.get(f"/api/v2/snapshots/acme/prod/{snapshot.index}").json()
    assert data["compliant"] is False and data["artifacts"][0]["reasons_for_incompliance"]
    assert not SnapshotCompliance.objects.exists()


def test_unpoliced_environments_store_compact_evaluations(org, owner_api, django_capture_on_commit_callbacks):
    env = make_env(org)
    snapshot = ingest(env, {"web:1": fp(1), "db:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    stored = SnapshotCompliance.objects.get(snapshot=snapshot)
    # No policy: compliance unknown (never compliant), still stored in O(1) — no per-artifact rows.
    assert stored.compliant is None and stored.artifacts == [] and stored.unknown_count == 2
    assert stored.compliant_count == 0 and stored.unauthorized_count == 2
    data = owner_api.get(f"/api/v2/snapshots/acme/prod/{snapshot.index}").json()
    assert data["compliant"] is None and data["compliance_status"] == "unknown" and data["applied_policies"] == []
    assert all(a["compliant"] is None and a["compliance_status"] == "unknown" and a["policy_decisions"] == []
               and a["authorized"] is False for a in data["artifacts"])


def test_snapshot_list_carries_compliance_per_snapshot(org, owner_api, django_capture_on_commit_callbacks,
                                                        monkeypatch):
    from snapshots import hooks

    env = make_env(org)
    ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)  # no policy yet: unknown
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
        report_flow_artifact(org, "web-flow", fp(1), name="web")
    ingest(env, {"web:1": fp(1), "rogue:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    monkeypatch.setattr(hooks, "_after_snapshot", [])  # the newest one not evaluated yet
    ingest(env, {"web:1": fp(1), "rogue:2": fp(3)}, capture=django_capture_on_commit_callbacks)
    assert SnapshotCompliance.objects.filter(environment=env).count() == 3

    listed = owner_api.get("/api/v2/snapshots/acme/prod").json()
    assert [(row["index"], row["compliant"]) for row in listed] == [(4, False), (3, True), (2, False), (1, None)]
    assert listed[3]["compliance_status"] == "unknown"  # evaluated before the policy: unknown, not compliant
    oldest_first = owner_api.get("/api/v2/snapshots/acme/prod?reverse=true&per_page=2").json()
    assert [(row["index"], row["compliant"]) for row in oldest_first] == [(1, None), (2, False)]
    assert SnapshotCompliance.objects.filter(environment=env).count() == 3  # reading wrote nothing


def test_snapshot_list_of_an_unpoliced_environment_is_unknown(org, owner_api, django_capture_on_commit_callbacks,
                                                                 monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from snapshots import hooks

    env = make_env(org, "dev")
    for n in range(1, 4):
        ingest(env, {f"web:{n}": fp(n)}, capture=django_capture_on_commit_callbacks)
    monkeypatch.setattr(hooks, "_after_snapshot", [])
    ingest(env, {"web:9": fp(9)}, capture=django_capture_on_commit_callbacks)  # not evaluated yet
    listed = owner_api.get("/api/v2/snapshots/acme/dev").json()
    assert [(row["index"], row["compliant"]) for row in listed] == [(4, None), (3, None), (2, None), (1, None)]
    # One batch per page: a longer page of evaluated snapshots costs no more queries.
    with CaptureQueriesContext(connection) as one:
        owner_api.get("/api/v2/snapshots/acme/dev?interval=1..3&per_page=1")
    with CaptureQueriesContext(connection) as three:
        owner_api.get("/api/v2/snapshots/acme/dev?interval=1..3&per_page=3")
    assert len(three.captured_queries) == len(one.captured_queries)
