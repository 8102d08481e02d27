"""Which alerts a snapshot raises (started, exited, scaled, allowed, unauthorized, compliant /
non-compliant environment) and agent-silence detection with a controllable clock."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import services
from alerts.models import Delivery
from audit.context import AuditContext
from policies import services as policy_services
from snapshots.models import Environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tests.policies.helpers import PROVENANCE_POLICY, fp, ingest, make_env, report_flow_artifact

pytestmark = pytest.mark.django_db
CTX = AuditContext.system("test")
ALL = list(services.ALERT_TRIGGERS)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def events():
    """(event_type, artifact name or None) of every delivery, oldest first."""
    out = []
    for delivery in Delivery.objects.order_by("id"):
        body = json.loads(delivery.body)
        out.append((delivery.event_type, (body.get("artifact") or {}).get("name")))
    return out


def run(env, artifacts, capture):
    with capture(execute=False):
        return ingest(env, artifacts)


def test_started_exited_scaled_and_unauthorized(org, capture):
    env = make_env(org, include_scaling=True)
    services.create_action(CTX, org, "all", "webhook", url="http://127.0.0.1:9/", triggers=ALL)
    report_flow_artifact(org, "web-flow", fp(1), name="web")
    run(env, {"web:1": fp(1), "miner:1": fp(2)}, capture)
    assert sorted(events()) == [("ON_STARTED_ARTIFACT", "miner:1"), ("ON_STARTED_ARTIFACT", "web:1"),
                                ("ON_UNAUTHORIZED_ARTIFACT", "miner:1")]
    unauthorized = json.loads(Delivery.objects.get(event_type="ON_UNAUTHORIZED_ARTIFACT").body)
    assert unauthorized["artifact"]["provenance"] is None
    started_web = json.loads(Delivery.objects.get(event_type="ON_STARTED_ARTIFACT", description__contains="web").body)
    assert started_web["artifact"]["provenance"]["flow"] == "web-flow"
    Delivery.objects.all().update(status="delivered")
    before = Delivery.objects.count()
    run(env, {"web:1": fp(1)}, capture)
    assert events()[before:] == [("ON_EXITED_ARTIFACT", "miner:1")]


def test_scaled(org, capture):
    env = make_env(org, include_scaling=True)
    services.create_action(CTX, org, "scale", "webhook", url="http://127.0.0.1:9/", triggers=["ON_SCALED_ARTIFACT"])
    raw = {"artifacts": [{"digests": {"web:1": fp(1)}, "creationTimestamp": 1_700_000_000}]}
    from tests.policies import helpers

    with capture(execute=False):
        helpers.ingest(env, {"web:1": fp(1)})
        report, _ = accept_report(CTX, env, env.type, json.dumps(
            {"artifacts": raw["artifacts"] * 3}).encode())
        ingest_report(report.pk)
    scaled = [d for d in Delivery.objects.all() if d.event_type == "ON_SCALED_ARTIFACT"]
    assert len(scaled) == 1 and "scaled from 1 to 3" in scaled[0].description


def test_environment_compliance_changes_and_allowed_artifacts(org, capture):
    env = make_env(org)
    triggers = ["ON_COMPLIANT_ENV", "ON_NON_COMPLIANT_ENV", "ON_ALLOWED_ARTIFACT"]
    services.create_action(CTX, org, "env", "webhook", url="http://127.0.0.1:9/", triggers=triggers)
    policy_services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with capture(execute=False):
        policy_services.attach_policies(CTX, org, env, ["needs-provenance"])
    run(env, {"miner:1": fp(2)}, capture)
    assert events() == [("ON_NON_COMPLIANT_ENV", None)]
    run(env, {"miner:1": fp(2), "other:1": fp(3)}, capture)
    assert len(events()) == 1  # still non-compliant: no new environment alert
    with capture(execute=False):
        policy_services.add_allowlist_entry(CTX, org, env, fp(2), "miner:1", "known")
        policy_services.add_allowlist_entry(CTX, org, env, fp(3), "other:1", "known")
        policy_services.reevaluate(env.pk, "allowlisted", CTX)
    assert sorted(events()[1:]) == [("ON_ALLOWED_ARTIFACT", "miner:1"), ("ON_ALLOWED_ARTIFACT", "other:1"),
                                    ("ON_COMPLIANT_ENV", None)]


def test_actions_scoped_to_environments(org, capture):
    prod, staging = make_env(org, "prod"), make_env(org, "staging")
    services.create_action(CTX, org, "prod-only", "webhook", url="http://127.0.0.1:9/",
                           environments=["prod"], triggers=["ON_STARTED_ARTIFACT"])
    run(staging, {"web:1": fp(1)}, capture)
    assert events() == []
    run(prod, {"web:1": fp(1)}, capture)
    assert events() == [("ON_STARTED_ARTIFACT", "web:1")]
    assert Delivery.objects.get().environment_name == "prod"


def test_agent_silence_with_a_controllable_clock(org, capture):
    env = make_env(org, expected_report_interval_seconds=300)
    services.create_action(CTX, org, "silence", "webhook", url="http://127.0.0.1:9/", triggers=["ON_AGENT_SILENT"])
    make_env(org, "staging", expected_report_interval_seconds=300)  # never reported: silent since creation
    run(env, {"web:1": fp(1)}, capture)
    reported = Environment.objects.get(pk=env.pk).last_report_at
    with capture(execute=False):
        assert services.check_agent_silence(now=reported + timedelta(seconds=200)) == 0
        assert services.check_agent_silence(now=reported + timedelta(seconds=301)) == 2
        assert services.check_agent_silence(now=reported + timedelta(seconds=900)) == 0  # one silence, one alert
    silent = Delivery.objects.filter(event_type="ON_AGENT_SILENT", environment_name="prod")
    assert silent.count() == 1
    body = json.loads(silent.get().body)
    assert "No report from the agent of prod" in body["description"]
    assert body["silent_since"] == reported.isoformat()
    # the agent reports again, then falls silent again: a new alert
    Environment.objects.filter(pk=env.pk).update(last_report_at=reported + timedelta(seconds=1000))
    with capture(execute=False):
        assert services.check_agent_silence(now=reported + timedelta(seconds=1100)) == 0
        services.check_agent_silence(now=reported + timedelta(seconds=1400))
    assert Delivery.objects.filter(event_type="ON_AGENT_SILENT", environment_name="prod").count() == 2


def test_archived_environments_are_not_watched(org, capture):
    env = make_env(org, expected_report_interval_seconds=60)
    Environment.objects.filter(pk=env.pk).update(archived=True)
    services.create_action(CTX, org, "silence", "webhook", url="http://127.0.0.1:9/", triggers=["ON_AGENT_SILENT"])
    with capture(execute=False):
        assert services.check_agent_silence(now=timezone.now() + timedelta(days=1)) == 0


def test_selectors_for_reports(org, capture):
    from alerts.selectors import agent_silences, alerts_raised

    env = make_env(org, expected_report_interval_seconds=60)
    for name in ("a", "b"):
        services.create_action(CTX, org, name, "webhook", url="http://127.0.0.1:9/",
                               triggers=["ON_STARTED_ARTIFACT", "ON_AGENT_SILENT"])
    run(env, {"web:1": fp(1)}, capture)
    with capture(execute=False):
        services.check_agent_silence(now=timezone.now() + timedelta(hours=1))
    raised = alerts_raised(org)
    assert [(r["event_type"], sorted(r["actions"])) for r in raised] == [
        ("ON_STARTED_ARTIFACT", ["a", "b"]), ("ON_AGENT_SILENT", ["a", "b"])]
    assert [s["environment"] for s in agent_silences(org)] == ["prod"]


def test_attempts_versions_and_evaluations_are_append_only(org, capture, receiver):
    from django.db import DatabaseError, transaction

    from alerts.models import DeliveryAttempt
    from policies.models import PolicyVersion, SnapshotCompliance

    env = make_env(org)
    policy_services.save_policy(CTX, org, "p", PROVENANCE_POLICY)
    services.create_action(CTX, org, "hook", "webhook", url=receiver.url, triggers=["ON_STARTED_ARTIFACT"])
    run(env, {"web:1": fp(1)}, capture)
    with capture(execute=False):
        services.attempt_delivery(Delivery.objects.get().pk)
    for model in (DeliveryAttempt, PolicyVersion, SnapshotCompliance):
        row = model.objects.first()
        for change in (lambda r: model.objects.filter(pk=r.pk).update(org=r.org),
                       lambda r: model.objects.filter(pk=r.pk).delete()):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                change(row)
