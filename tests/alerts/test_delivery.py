"""Webhook deliveries end to end with a real worker and a real local receiver: Standard Webhooks
signatures, retries after 500s with the same webhook-id, 410 and repeated failures disabling the
action (with an email to admins), redelivery, test sends, Slack and email payloads."""

import json

import pytest
from django.core import mail

from alerts import services, signing
from alerts.choices import DeliveryStatus
from alerts.models import Action, Delivery, DeliveryAttempt
from audit.context import AuditContext
from tests.conftest import real_worker
from tests.policies.helpers import PROVENANCE_POLICY, fp, ingest, make_env

CTX = AuditContext.system("test")


def webhook(org, receiver, triggers=("ON_STARTED_ARTIFACT",), **extra):
    action, secret = services.create_action(CTX, org, extra.pop("name", "hook"), extra.pop("type", "webhook"),
                                            url=receiver.url, triggers=list(triggers), **extra)
    return action, secret


def wait_status(delivery_id, statuses, worker_timeout=20.0):
    import time

    deadline = time.monotonic() + worker_timeout
    while time.monotonic() < deadline:
        delivery = Delivery.objects.get(pk=delivery_id)
        if delivery.status in statuses:
            return delivery
        time.sleep(0.05)
    return Delivery.objects.get(pk=delivery_id)


@pytest.mark.django_db(transaction=True)
def test_snapshot_alert_arrives_signed_with_the_documented_payload(org, receiver, celery_worker):
    env = make_env(org)
    _, secret = webhook(org, receiver)
    snapshot = ingest(env, {"web:1": fp(1)})
    request = receiver.wait_for(1)[0]
    headers = request["headers"]
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    assert signing.verify(secret, headers, request["body"])
    assert not signing.verify(signing.new_secret(), headers, request["body"])
    payload = json.loads(request["body"])
    assert payload["event_type"] == "ON_STARTED_ARTIFACT" and payload["org"] == "acme"
    assert payload["environment"] == "prod" and payload["version"] == 1
    assert payload["snapshot"]["index"] == snapshot.index and payload["snapshot"]["compliant"] is None
    assert payload["snapshot"]["api_url"].endswith(f"/api/v2/snapshots/acme/prod/{snapshot.index}")
    assert payload["artifact"]["name"] == "web:1" and payload["artifact"]["fingerprint"] == fp(1)
    assert payload["artifact"]["provenance"] is None
    delivery = wait_status(Delivery.objects.get().pk, {DeliveryStatus.DELIVERED})
    assert delivery.status == DeliveryStatus.DELIVERED
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 200 and attempt.response_snippet == "ok"


@pytest.mark.django_db(transaction=True)
def test_retries_after_500_with_the_same_webhook_id(org, receiver, celery_worker, settings):
    settings.CSM_WEBHOOK_RETRY_BASE_SECONDS = 0
    receiver.script = [500, 503]
    env = make_env(org)
    _, secret = webhook(org, receiver)
    ingest(env, {"web:1": fp(1)})
    requests = receiver.wait_for(3)
    assert [r["status"] for r in requests] == [500, 503, 200]
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1
    assert all(signing.verify(secret, r["headers"], r["body"]) for r in requests)
    delivery = wait_status(Delivery.objects.get().pk, {DeliveryStatus.DELIVERED})
    assert delivery.attempt_count == 3
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [500, 503, 200]
    assert Action.objects.get().consecutive_failures == 0


@pytest.mark.django_db(transaction=True)
def test_every_event_has_its_own_id_and_is_delivered_once(org, receiver, celery_worker):
    env = make_env(org)
    webhook(org, receiver, triggers=("ON_STARTED_ARTIFACT", "ON_EXITED_ARTIFACT"))
    ingest(env, {"web:1": fp(1), "db:1": fp(2)})
    ingest(env, {"web:2": fp(3), "db:1": fp(2)})
    requests = receiver.wait_for(4)
    for delivery in Delivery.objects.all():
        wait_status(delivery.pk, {DeliveryStatus.DELIVERED})
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert len(ids) == 4 and len(set(ids)) == 4
    events = sorted((json.loads(r["body"])["event_type"], json.loads(r["body"])["artifact"]["name"]) for r in requests)
    assert events == [("ON_EXITED_ARTIFACT", "web:1"), ("ON_STARTED_ARTIFACT", "db:1"),
                      ("ON_STARTED_ARTIFACT", "web:1"), ("ON_STARTED_ARTIFACT", "web:2")]


@pytest.mark.django_db(transaction=True)
def test_410_disables_the_action_and_emails_admins(org, receiver, celery_worker, owner):
    receiver.default_status = 410
    env = make_env(org)
    action, _ = webhook(org, receiver)
    ingest(env, {"web:1": fp(1)})
    receiver.wait_for(1)
    delivery = wait_status(Delivery.objects.get().pk, {DeliveryStatus.FAILED})
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempt_count == 1
    action.refresh_from_db()
    assert action.enabled is False and "410" in action.disabled_reason
    assert any(owner.email in m.to and "disabled" in m.subject for m in mail.outbox)
    ingest(env, {"web:2": fp(2)})  # a disabled action raises nothing more
    assert Delivery.objects.count() == 1


@pytest.mark.django_db
def test_repeated_failures_disable_the_action(org, receiver, settings, django_capture_on_commit_callbacks, owner):
    settings.CSM_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.CSM_WEBHOOK_RETRY_BASE_SECONDS = 0
    receiver.default_status = 500
    env = make_env(org)
    action, _ = webhook(org, receiver)
    ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=False):
            services.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    action.refresh_from_db()
    assert delivery.attempt_count == 3 and delivery.status == DeliveryStatus.FAILED
    assert action.enabled is False and "3 failed attempts" in action.disabled_reason
    assert len(mail.outbox) == 1 and owner.email in mail.outbox[0].to


@pytest.mark.django_db
def test_a_claimed_delivery_is_never_sent_twice(org, receiver, django_capture_on_commit_callbacks):
    env = make_env(org)
    webhook(org, receiver)
    snapshot = ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        assert services.alerts_for_snapshot(snapshot.pk) == []  # the hook ran already: no second delivery
    delivery = Delivery.objects.get()
    assert services.attempt_delivery(delivery.pk) == DeliveryStatus.DELIVERED
    assert services.attempt_delivery(delivery.pk) == "not-due"  # a duplicate task message sends nothing
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_redelivery_resends_with_the_same_id(org, receiver, owner_api, django_capture_on_commit_callbacks,
                                            eager_tasks):
    env = make_env(org)
    webhook(org, receiver)
    ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    services.attempt_delivery(delivery.pk)
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post(f"/api/v2/orgs/acme/deliveries/{delivery.pk}/redeliver")
    assert answer.status_code == 202
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["headers"]["webhook-id"] == receiver.requests[1]["headers"]["webhook-id"]
    log = owner_api.get(f"/api/v2/orgs/acme/actions/{delivery.action_id}/deliveries").json()
    assert log["count"] == 1 and [a["number"] for a in log["results"][0]["attempts"]] == [1, 2]


@pytest.mark.django_db
def test_test_send_and_slack_payload(org, receiver, owner_api, django_capture_on_commit_callbacks, eager_tasks):
    make_env(org)
    action, _ = webhook(org, receiver, type="slack", name="slack", triggers=("ON_NON_COMPLIANT_ENV",))
    with django_capture_on_commit_callbacks(execute=True):
        answer = owner_api.post(f"/api/v2/orgs/acme/actions/{action.pk}/test")
    assert answer.status_code == 202
    body = json.loads(receiver.requests[0]["body"])
    assert "Test alert" in body["text"] and body["blocks"][0]["type"] == "section"
    assert "webhook-signature" not in receiver.requests[0]["headers"]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


@pytest.mark.django_db
def test_slack_message_links_back_to_the_snapshot(org, receiver, django_capture_on_commit_callbacks, eager_tasks):
    env = make_env(org)
    from policies.services import attach_policies, save_policy

    save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        attach_policies(CTX, org, env, ["needs-provenance"])
    webhook(org, receiver, type="slack", name="slack", triggers=("ON_NON_COMPLIANT_ENV",))
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = ingest(env, {"web:1": fp(1)})
    body = json.loads(receiver.requests[0]["body"])
    assert "prod became non-compliant" in body["text"]
    assert f"/o/acme/environments/prod/snapshots/{snapshot.index}/|Open in csm>" in json.dumps(body["blocks"])


@pytest.mark.django_db
def test_email_action_sends_a_readable_email(org, django_capture_on_commit_callbacks, eager_tasks):
    env = make_env(org)
    services.create_action(CTX, org, "mail", "email", email="ops@example.com", triggers=["ON_STARTED_ARTIFACT"])
    with django_capture_on_commit_callbacks(execute=True):
        ingest(env, {"web:1": fp(1)})
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com"] and "web:1 started in prod" in message.subject
    assert fp(1) in message.body and "/o/acme/environments/prod/snapshots/1/" in message.body
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


@pytest.mark.django_db
def test_sweeper_sends_lost_and_stuck_deliveries(org, receiver, django_capture_on_commit_callbacks, eager_tasks):
    from datetime import timedelta

    from django.utils import timezone

    env = make_env(org)
    webhook(org, receiver, triggers=("ON_STARTED_ARTIFACT", "ON_EXITED_ARTIFACT"))
    with django_capture_on_commit_callbacks(execute=False):  # the task messages are "lost"
        ingest(env, {"web:1": fp(1)})
        ingest(env, {"web:2": fp(2)})
    lost, stuck = Delivery.objects.order_by("id")[:2]
    Delivery.objects.filter(pk=stuck.pk).update(status=DeliveryStatus.SENDING,
                                                claimed_at=timezone.now() - timedelta(hours=1))
    assert services.retry_due_deliveries(now=timezone.now() + timedelta(seconds=10)) == 3
    assert len(receiver.requests) == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


@pytest.mark.django_db(transaction=True)
def test_deliveries_have_their_own_queue_for_a_dedicated_worker(org, receiver, settings):
    """Webhooks go out on the "alerts" queue, so a slow receiver never delays ingest, and a worker
    started with ``-Q alerts`` delivers them."""
    import redis

    from csm.celery import app

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    app.conf.task_always_eager = False
    env = make_env(org)
    webhook(org, receiver)
    ingest(env, {"web:1": fp(1)})  # accepted (ingest task published) and ingested in-process: one delivery
    assert (broker.llen("alerts"), broker.llen("ingest"), broker.llen("celery")) == (1, 1, 0)
    with real_worker(queues=["alerts"]):
        delivery = wait_status(Delivery.objects.get().pk, {DeliveryStatus.DELIVERED})
    assert delivery.status == DeliveryStatus.DELIVERED and len(receiver.wait_for(1)) == 1
    assert broker.llen("ingest") == 1  # left for the ingest workers
