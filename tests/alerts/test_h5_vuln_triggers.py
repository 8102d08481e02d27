"""The vulnerability alert triggers: ON_VULNERABLE_ARTIFACT_STARTED (an artifact with an unsuppressed
vulnerability match starts) and ON_NEW_VULNERABILITY_AFFECTS_RUNNING (new matches — a new advisory or
a new SBOM — of artifacts running now, one alert per environment), an action's minimum severity, the
Slack and email messages, and the whole path with a real worker and a local webhook receiver."""

import json

import pytest
from django.db import transaction

from alerts import hooks as alert_hooks
from alerts import services
from alerts.models import Action, Delivery
from audit.context import AuditContext
from policies import services as policy_services
from policies.models import SnapshotCompliance
from tests.conftest import wait_for
from tests.policies.helpers import POLICY_HEAD, fp, ingest, make_env
from tests.vulns.h4_support import advisory, match, sbom, vex_statement
from vulns import hooks as vuln_hooks

CTX = AuditContext.system("test")
JINJA = "pkg:pypi/jinja2@2.10"
REQUESTS = "pkg:pypi/requests@2.31.0"
STARTED = "ON_VULNERABLE_ARTIFACT_STARTED"
NEW = "ON_NEW_VULNERABILITY_AFFECTS_RUNNING"


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def action(org, triggers, name="vulns", url="http://127.0.0.1:9/", **extra) -> Action:
    return services.create_action(CTX, org, name, extra.pop("type", "webhook"), url=url, triggers=list(triggers),
                                  **extra)[0]


def bodies(event_type, action_name=None) -> list[dict]:
    rows = Delivery.objects.filter(event_type=event_type).order_by("id")
    if action_name:
        rows = rows.filter(action__name=action_name)
    return [json.loads(d.body) for d in rows]


# --- ON_VULNERABLE_ARTIFACT_STARTED -------------------------------------------------------------------


@pytest.mark.django_db
def test_an_artifact_with_a_vulnerability_alerts_when_it_starts(org, capture):
    env = make_env(org)
    action(org, [STARTED])
    packages = sbom(org, fp(1), JINJA)
    match(org, advisory("GHSA-h5bb-0001-0001", aliases=["CVE-2024-51001"], group_id="CVE-2024-51001",
                        severity="critical", cvss_score=9.1, summary="Sandbox escape"), packages[JINJA])
    match(org, advisory("GHSA-h5bb-0002-0002", severity="medium"), packages[JINJA])
    sbom(org, fp(2), REQUESTS)  # clean: no alert
    with capture(execute=False):
        snapshot = ingest(env, {"web:1": fp(1), "api:1": fp(2), "rogue:1": fp(3)})
    [event] = bodies(STARTED)
    assert event["event_type"] == STARTED and event["environment"] == "prod" and event["org"] == "acme"
    assert event["artifact"]["name"] == "web:1" and event["artifact"]["fingerprint"] == fp(1)
    assert event["snapshot"]["index"] == snapshot.index
    assert event["description"] == "web:1 started in prod with CVE-2024-51001 (critical) and 1 more"
    critical, medium = event["vulnerabilities"]
    assert critical == {"id": "CVE-2024-51001", "osv_ids": ["GHSA-h5bb-0001-0001"],
                        "aliases": critical["aliases"], "severity": "critical", "cvss_score": 9.1,
                        "summary": "Sandbox escape", "components": [JINJA], "fixed": ["2.10.1"],
                        "first_matched_at": critical["first_matched_at"]}
    assert "CVE-2024-51001" in critical["aliases"] and critical["first_matched_at"]
    assert medium["id"] == "GHSA-h5bb-0002-0002" and medium["severity"] == "medium"
    # Still running in the next snapshot: not started again, no second alert.
    with capture(execute=False):
        ingest(env, {"web:1": fp(1), "api:1": fp(2)})
    assert len(bodies(STARTED)) == 1


@pytest.mark.django_db
def test_starting_in_another_environment_alerts_there(org, capture):
    prod, staging = make_env(org), make_env(org, "staging")
    action(org, [STARTED], environments=["prod"])
    match(org, advisory("GHSA-h5bb-0003-0003"), sbom(org, fp(1), JINJA)[JINJA])
    with capture(execute=False):
        ingest(staging, {"web:1": fp(1)})
    assert bodies(STARTED) == []  # the action listens to prod only
    with capture(execute=False):
        ingest(prod, {"web:1": fp(1)})
    assert [e["environment"] for e in bodies(STARTED)] == ["prod"]


@pytest.mark.django_db
def test_minimum_severity_filters_what_each_action_is_told(org, capture):
    env = make_env(org)
    action(org, [STARTED], name="everything")
    action(org, [STARTED], name="critical-only", min_severity="critical")
    match(org, advisory("GHSA-h5bb-0004-0004", severity="high"), sbom(org, fp(1), JINJA)[JINJA])
    unknown = sbom(org, fp(2), JINJA)
    match(org, advisory("GHSA-h5bb-0005-0005", severity="unknown"), unknown[JINJA])
    with capture(execute=False):
        ingest(env, {"web:1": fp(1), "api:1": fp(2)})
    assert sorted(e["artifact"]["name"] for e in bodies(STARTED, "everything")) == ["api:1", "web:1"]
    # An advisory of unknown severity is not a low one: it reaches the critical-only action too.
    [told] = bodies(STARTED, "critical-only")
    assert told["artifact"]["name"] == "api:1" and [v["id"] for v in told["vulnerabilities"]] == ["GHSA-h5bb-0005-0005"]


# --- ON_NEW_VULNERABILITY_AFFECTS_RUNNING -------------------------------------------------------------


@pytest.mark.django_db
def test_new_matches_alert_once_per_environment_naming_the_running_artifacts(org, capture):
    prod, staging = make_env(org), make_env(org, "staging")
    web, worker, gone = sbom(org, fp(1), JINJA), sbom(org, fp(2), JINJA), sbom(org, fp(3), JINJA)
    with capture(execute=False):
        ingest(prod, {"web:1": fp(1), "worker:1": fp(2), "old:1": fp(3)})
        ingest(prod, {"web:1": fp(1), "worker:1": fp(2)})  # old:1 exited: not running now
        ingest(staging, {"web:1": fp(1)})
    action(org, [NEW])
    item = advisory("GHSA-h5bb-0006-0006", aliases=["CVE-2024-51006"], group_id="CVE-2024-51006", severity="high")
    ids = [match(org, item, packages[JINJA]).pk for packages in (web, worker, gone)]
    with transaction.atomic():
        services.alerts_for_new_matches(org.pk, ids, "advisory")
    events = {e["environment"]: e for e in bodies(NEW)}
    assert set(events) == {"prod", "staging"}
    prod_event = events["prod"]
    assert prod_event["cause"] == "advisory" and prod_event["artifact"] is None
    assert prod_event["description"] == "CVE-2024-51006 (high) affects 2 running artifact(s) in prod: web:1, worker:1"
    [vulnerability] = prod_event["vulnerabilities"]
    assert vulnerability["id"] == "CVE-2024-51006" and vulnerability["severity"] == "high"
    assert [(a["name"], a["fingerprint"], a["components"]) for a in vulnerability["artifacts"]] == [
        ("web:1", fp(1), [JINJA]), ("worker:1", fp(2), [JINJA])]
    assert all(a["running_since"] for a in vulnerability["artifacts"])
    prod.refresh_from_db()
    assert prod_event["snapshot"]["index"] == prod.last_snapshot_index
    assert [a["name"] for a in events["staging"]["vulnerabilities"][0]["artifacts"]] == ["web:1"]
    # The hook running twice for the same matches alerts once.
    with transaction.atomic():
        assert services.alerts_for_new_matches(org.pk, ids, "advisory") == []
    assert Delivery.objects.filter(event_type=NEW).count() == 2


@pytest.mark.django_db
def test_a_new_sbom_of_a_running_artifact_alerts_too(org, capture):
    env = make_env(org)
    with capture(execute=False):
        ingest(env, {"web:1": fp(1)})
    action(org, [NEW])
    found = match(org, advisory("GHSA-h5bb-0007-0007", severity="critical"), sbom(org, fp(1), JINJA)[JINJA])
    with transaction.atomic():
        services.alerts_for_new_matches(org.pk, [found.pk], "sbom")
    [event] = bodies(NEW)
    assert event["cause"] == "sbom" and event["vulnerabilities"][0]["id"] == "GHSA-h5bb-0007-0007"


@pytest.mark.django_db
def test_matches_of_artifacts_that_do_not_run_and_other_orgs_actions_raise_nothing(org, other_org, capture):
    env = make_env(org)
    with capture(execute=False):
        ingest(env, {"api:1": fp(2)})
    action(org, [NEW])
    action(other_org, [NEW])
    found = match(org, advisory("GHSA-h5bb-0008-0008"), sbom(org, fp(1), JINJA)[JINJA])
    with transaction.atomic():
        assert services.alerts_for_new_matches(org.pk, [found.pk], "advisory") == []
    # another org's match ids are not this org's: nothing is read across orgs
    other = match(other_org, advisory("GHSA-h5bb-0009-0009"), sbom(other_org, fp(2), JINJA)[JINJA])
    with transaction.atomic():
        assert services.alerts_for_new_matches(org.pk, [other.pk], "advisory") == []
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_min_severity_below_the_threshold_sends_nothing_to_that_action(org, capture):
    env = make_env(org)
    with capture(execute=False):
        ingest(env, {"web:1": fp(1)})
    action(org, [NEW], name="high-up", min_severity="high")
    action(org, [NEW], name="all")
    found = match(org, advisory("GHSA-h5bb-0010-0010", severity="low"), sbom(org, fp(1), JINJA)[JINJA])
    with transaction.atomic():
        services.alerts_for_new_matches(org.pk, [found.pk], "advisory")
    assert [d.action.name for d in Delivery.objects.filter(event_type=NEW)] == ["all"]


@pytest.mark.django_db
def test_slack_and_email_name_the_vulnerabilities(org, capture):
    env = make_env(org)
    with capture(execute=False):
        ingest(env, {"web:1": fp(1)})
    action(org, [NEW], name="slack", type="slack", url="http://127.0.0.1:9/slack")
    services.create_action(CTX, org, "mail", "email", email="sec@example.com", triggers=[NEW])
    found = match(org, advisory("GHSA-h5bb-0011-0011", aliases=["CVE-2024-51011"], group_id="CVE-2024-51011",
                                severity="critical"), sbom(org, fp(1), JINJA)[JINJA])
    with transaction.atomic():
        services.alerts_for_new_matches(org.pk, [found.pk], "advisory")
    slack = json.loads(Delivery.objects.get(action__name="slack").body)
    assert "`CVE-2024-51011 (critical): web:1; fixed in 2.10.1`" in slack["blocks"][0]["text"]["text"]
    mail = json.loads(Delivery.objects.get(action__name="mail").body)
    assert "Vulnerabilities:\n- CVE-2024-51011 (critical): web:1; fixed in 2.10.1" in mail["body"]
    assert mail["subject"].startswith("[csm] prod: CVE-2024-51011 (critical) affects 1 running artifact(s)")


# --- actions: the minimum severity -------------------------------------------------------------------


@pytest.mark.django_db
def test_min_severity_is_validated_stored_and_audited(org, owner_api):
    created = owner_api.post("/api/v2/orgs/acme/actions", {"name": "sec", "type": "webhook",
                                                          "url": "http://127.0.0.1:9/csm",
                                                          "triggers": [NEW, STARTED], "min_severity": "high"},
                             format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["min_severity"] == "high" and created.json()["triggers"] == [NEW, STARTED]
    bad = owner_api.patch(f"/api/v2/orgs/acme/actions/{created.json()['id']}", {"min_severity": "severe"},
                          format="json")
    assert bad.status_code == 400 and "min_severity" in bad.json()["error"]["fields"]
    cleared = owner_api.patch(f"/api/v2/orgs/acme/actions/{created.json()['id']}", {"min_severity": ""},
                              format="json")
    assert cleared.status_code == 200 and cleared.json()["min_severity"] == ""
    from audit.models import AuditEvent

    updated = AuditEvent.objects.filter(org=org, action="action.updated").get()
    assert updated.before["min_severity"] == "high" and updated.after["min_severity"] == ""
    with pytest.raises(services.ActionError) as refused:
        services.create_action(CTX, org, "x", "webhook", url="http://127.0.0.1:9/x", triggers=[NEW],
                               min_severity="urgent")
    assert refused.value.field == "min_severity"


@pytest.mark.django_db
def test_the_web_form_sets_the_minimum_severity(org, owner, client):
    client.force_login(owner)
    answer = client.post("/o/acme/alerts/", {"name": "sec", "type": "webhook", "url": "http://127.0.0.1:9/csm",
                                            "triggers": [NEW], "min_severity": "critical"})
    assert answer.status_code in (200, 302), answer.content[:500]
    assert Action.objects.get(name="sec").min_severity == "critical"
    page = client.get(f"/o/acme/alerts/{Action.objects.get(name='sec').pk}/")
    assert b"Minimum severity" in page.content and NEW.encode() in page.content


# --- end to end ---------------------------------------------------------------------------------------


def test_the_hooks_are_registered():
    assert alert_hooks.raise_vulnerability_alerts in vuln_hooks._matches_added


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_new_advisory_matching_a_running_artifact_reaches_the_webhook(org, receiver, celery_worker):
    env = make_env(org)
    policy_services.save_policy(CTX, org, "no-critical", POLICY_HEAD + "artifacts:\n  vulnerabilities:\n"
                                "    fail_at: critical\n")
    policy_services.attach_policies(CTX, org, env, ["no-critical"])
    web, api = sbom(org, fp(1), JINJA), sbom(org, fp(2), JINJA)
    ingest(env, {"web:1": fp(1), "api:1": fp(2)})
    assert wait_for(lambda: SnapshotCompliance.objects.filter(environment=env, snapshot_index=1).first(),
                    "the first evaluation").compliant is True
    vex_statement(org, fp(2), "CVE-2024-51012")  # api:1 is declared not affected by CVE-2024-51012
    action(org, [NEW], url=receiver.url)
    # A new advisory whose only match a VEX statement suppresses: nothing to alert. The hook runs when
    # the matches commit, in the committing process, so there is nothing to wait for.
    with transaction.atomic():
        item = advisory("GHSA-h5bb-0012-0012", aliases=["CVE-2024-51012"], group_id="CVE-2024-51012",
                        severity="critical")
        vuln_hooks.run_matches_added(org.pk, [match(org, item, api[JINJA]).pk], "advisory")
    assert not Delivery.objects.exists()
    # What the matcher does when an import brings a new advisory: store its matches and announce them
    # in the same transaction; the alert follows on commit, with no polling in between.
    with transaction.atomic():
        item = advisory("GHSA-h5bb-0013-0013", aliases=["CVE-2024-51013"], group_id="CVE-2024-51013",
                        severity="critical")
        found = [match(org, item, packages[JINJA]).pk for packages in (web, api)]
        vuln_hooks.run_matches_added(org.pk, found, "advisory")
    [request] = receiver.wait_for(1)
    event = json.loads(request["body"])
    assert event["event_type"] == NEW and event["environment"] == "prod"
    [vulnerability] = event["vulnerabilities"]
    assert vulnerability["id"] == "CVE-2024-51013"
    assert [a["name"] for a in vulnerability["artifacts"]] == ["api:1", "web:1"]
    delivery = wait_for(lambda: Delivery.objects.filter(event_type=NEW, status="delivered").first(), "delivery")
    assert delivery.source_at is not None and delivery.delivered_at >= delivery.source_at
    assert Delivery.objects.count() == 1
    # The same matches re-evaluated the environment in the worker: a re-evaluation snapshot records that
    # both artifacts now fail the policy, naming the vulnerability.
    reevaluated = wait_for(lambda: SnapshotCompliance.objects.filter(environment=env, compliant=False).first(),
                           "the re-evaluation")
    decisions = reevaluated.artifacts_by_fingerprint()
    assert all("CVE-2024-51013 (critical" in decisions[f]["reasons_for_incompliance"][0] for f in (fp(1), fp(2)))


@pytest.mark.django_db
def test_a_suppressed_match_does_not_alert_when_the_artifact_starts(org, capture):
    env = make_env(org)
    action(org, [STARTED])
    match(org, advisory("GHSA-h5bb-0014-0014", aliases=["CVE-2024-51014"], group_id="CVE-2024-51014"),
          sbom(org, fp(1), JINJA)[JINJA])
    vex_statement(org, fp(1), "CVE-2024-51014", status="fixed", justification="")
    with capture(execute=False):
        ingest(env, {"web:1": fp(1)})
    assert bodies(STARTED) == []
