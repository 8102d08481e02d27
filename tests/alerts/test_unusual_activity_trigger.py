"""ON_UNUSUAL_ACTIVITY: unusual use of credentials (identity.activity) reaches an alert action through the
real delivery machinery — a real Celery worker posting to a local webhook receiver — with the kind, the
summary, the details, the actor, the address and a link to the audit event; Slack and email name them too;
an action limited to environments hears only about those environments."""

import json
from datetime import UTC, datetime

import pytest

from alerts import services
from alerts.models import Delivery
from audit.context import AuditContext
from identity.activity import UnusualKind
from tenants.choices import Role
from tests.alerts.conftest import receiver  # noqa: F401 (the local webhook receiver fixture)
from tests.conftest import wait_for
from tests.identity.unusual_support import flags, fp, ingest_at
from tests.policies.helpers import make_env

CTX = AuditContext.system("test")
TRIGGER = "ON_UNUSUAL_ACTIVITY"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_token_from_a_new_network_alerts_through_the_worker(org, token_for, api, receiver,  # noqa: F811
                                                              celery_worker):
    services.create_action(CTX, org, "security", "webhook", url=receiver.url, triggers=[TRIGGER])
    client = api(token=token_for(org, Role.READER, name="ci"))
    for ip in ("10.1.2.3", "10.1.2.99", "192.168.7.1"):
        assert client.get("/api/v2/environments/acme", REMOTE_ADDR=ip).status_code == 200
    [request] = receiver.wait_for(1)
    [flag] = flags(org)
    event = json.loads(request["body"])
    assert event["event_type"] == TRIGGER and event["org"] == "acme" and event["environment"] is None
    unusual = event["unusual_activity"]
    assert unusual["kind"] == UnusualKind.NEW_NETWORK and unusual["summary"] == event["description"]
    assert unusual["details"]["network"] == "192.168.7.0/24" and unusual["details"]["known_networks"] == [
        "10.1.2.0/24"]
    assert unusual["actor"] == {"type": "service_account", "label": flag.actor_label}
    assert unusual["ip"] == "192.168.7.1"
    assert unusual["audit_event"]["seq"] == flag.seq and unusual["audit_event"]["id"] == flag.pk
    assert unusual["audit_event"]["html_url"].endswith(f"/o/acme/audit/?seq={flag.seq}#event-{flag.seq}")
    assert unusual["audit_event"]["api_url"].endswith(f"/api/v2/orgs/acme/audit-events/{flag.pk}")
    assert request["headers"]["webhook-signature"].startswith("v1,")
    delivery = wait_for(lambda: Delivery.objects.filter(event_type=TRIGGER, status="delivered").first(), "delivery")
    assert delivery.environment_name == "" and delivery.source_at == flag.created_at
    # A fourth request from the known networks alerts nothing more.
    client.get("/api/v2/environments/acme", REMOTE_ADDR="192.168.7.2")
    assert Delivery.objects.filter(event_type=TRIGGER).count() == 1


@pytest.mark.django_db
def test_actions_limited_to_environments_hear_only_about_theirs(org, django_capture_on_commit_callbacks):
    everywhere, _ = services.create_action(CTX, org, "all", "webhook", url="http://127.0.0.1:9/", triggers=[TRIGGER])
    make_env(org, "staging")
    prod = make_env(org, "prod", change_windows=[{"days": ["mon"], "start": "09:00", "end": "10:00"}])
    prod_only, _ = services.create_action(CTX, org, "prod", "webhook", url="http://127.0.0.1:9/",
                                          environments=["prod"], triggers=[TRIGGER])
    with django_capture_on_commit_callbacks(execute=True):
        ingest_at(prod, {"web": fp(1)}, datetime(2026, 12, 5, 3, 0, tzinfo=UTC))  # a Saturday: outside
    deliveries = {d.action_id: d for d in Delivery.objects.filter(event_type=TRIGGER)}
    assert set(deliveries) == {everywhere.pk, prod_only.pk}
    body = json.loads(deliveries[prod_only.pk].body)
    assert body["environment"] == "prod" and body["unusual_activity"]["kind"] == UnusualKind.OUTSIDE_CHANGE_WINDOW
    assert body["unusual_activity"]["details"]["snapshot"] == 1


@pytest.mark.django_db
def test_slack_and_email_name_the_kind_the_actor_and_the_audit_event(org, owner, django_capture_on_commit_callbacks):
    from identity.activity import flag_unusual

    slack, _ = services.create_action(CTX, org, "slack", "slack", url="http://127.0.0.1:9/", triggers=[TRIGGER])
    email, _ = services.create_action(CTX, org, "mail", "email", email="sec@example.com", triggers=[TRIGGER])
    ctx = AuditContext.for_user(owner, ip="198.51.100.7")
    with django_capture_on_commit_callbacks(execute=True):
        event = flag_unusual(ctx, org, UnusualKind.FAILED_SIGN_INS, "5 failed sign-ins of owner@example.com",
                             {"account": "owner@example.com", "failures": 5})
    bodies = {d.action_id: json.loads(d.body) for d in Delivery.objects.filter(event_type=TRIGGER)}
    text = bodies[slack.pk]["blocks"][0]["text"]["text"]
    assert "*5 failed sign-ins of owner@example.com*" in text and "Kind: failed_sign_ins" in text
    assert "Actor: owner@example.com (user)" in text and "IP: 198.51.100.7" in text
    assert f"/o/acme/audit/?seq={event.seq}" in bodies[slack.pk]["blocks"][1]["elements"][0]["text"]
    mail = bodies[email.pk]
    assert mail["subject"] == "[csm] acme: 5 failed sign-ins of owner@example.com"
    assert f"Audit event: #{event.seq}" in mail["body"] and f"?seq={event.seq}" in mail["body"]


@pytest.mark.django_db
def test_the_trigger_is_offered_and_accepted(org, owner_api):
    response = owner_api.post("/api/v2/orgs/acme/actions", {"name": "sec", "type": "webhook",
                                                             "url": "http://127.0.0.1:9/hook",
                                                             "triggers": [TRIGGER]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["triggers"] == [TRIGGER]
