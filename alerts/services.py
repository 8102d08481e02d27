"""Writes of the alerts app: actions (CRUD, test send), alerts raised from snapshots and silent agents,
and the delivery of each alert with retries.

Latency matters: the after-snapshot hook creates the deliveries in one short transaction and each is
published as its own Celery task on commit, so a slow or dead receiver never delays another action or
the next ingest. A delivery is *claimed* with a conditional UPDATE before it is sent, so a task that
Redis delivers twice, or a sweeper re-enqueue, never sends the same attempt twice; retries reuse the
delivery's ``event_id`` (the ``webhook-id``).
"""

import hashlib
import json
import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from audit.services import record_event
from csm.errors import ServiceError
from csm.lib import outbound
from csm.metrics import ALERT_DELIVERIES, ALERT_DELIVERY_SECONDS
from policies.facts import gather_facts
from policies.models import SnapshotCompliance
from policies.services import evaluate_snapshot
from policies.standing import active_allowlisted, authorization
from snapshots.models import Environment, Snapshot, SnapshotEntry
from snapshots.selectors import snapshot_artifacts
from tenants.choices import Role
from tenants.models import Membership, Org
from vulns.choices import LIST_ORDER, SEVERITY_RANK, VulnSeverity
from vulns.exposure import artifact_vulnerabilities
from vulns.models import VulnerabilityMatch

from . import signing
from .choices import ActionType, DeliveryStatus, MinSeverity, Trigger
from .models import Action, AgentSilence, Delivery, DeliveryAttempt

log = logging.getLogger(__name__)

ALERT_TRIGGERS = [t.value for t in Trigger if t != Trigger.ON_TEST]
PAYLOAD_VERSION = 1


class ActionError(ServiceError):
    """An alert-action write refused (see csm.errors.ServiceError)."""


# --- actions -------------------------------------------------------------------------------------


def validate_action(org, data: dict) -> dict:
    """The rules of an action's fields (shared by the writes below and the web forms): the cleaned data,
    or ``ActionError`` naming the field at fault."""
    kind = data["type"]
    name = data.get("name", "x")
    if not name or len(name) > 100:
        raise ActionError("Give a name of 1-100 characters.", "name")
    if kind not in ActionType.values:
        raise ActionError(f"Unknown type {kind!r}; use {', '.join(ActionType.values)}.", "type")
    if kind in (ActionType.WEBHOOK, ActionType.SLACK):
        url = data.get("url") or ""
        if not url:
            raise ActionError("A webhook or Slack action needs a url.", "url")
        if len(url) > 2000:
            raise ActionError("The url is longer than 2000 characters.", "url")
        try:
            outbound.resolve(url)
        except outbound.OutboundRefused as refused:
            raise ActionError(str(refused), "url") from None
        data["email"] = ""
    elif kind == ActionType.EMAIL:
        if not data.get("email"):
            raise ActionError("An email action needs an email address.", "email")
        try:
            validate_email(data["email"])
        except ValidationError:
            raise ActionError("Enter a valid email address.", "email") from None
        data["url"] = ""
    triggers = list(dict.fromkeys(data.get("triggers") or []))
    for index, trigger in enumerate(triggers):
        if trigger not in ALERT_TRIGGERS:
            raise ActionError(f"Unknown trigger {trigger!r}; use {', '.join(ALERT_TRIGGERS)}.", f"triggers[{index}]")
    if not triggers:
        raise ActionError("Give at least one trigger.", "triggers")
    data["triggers"] = triggers
    names = list(dict.fromkeys(data.get("environments") or []))
    known = set(Environment.objects.for_org(org).filter(name__in=names).values_list("name", flat=True))
    for index, name in enumerate(names):
        if name not in known:
            raise ActionError(f"No environment named {name!r}.", f"environments[{index}]")
    data["environments"] = names
    min_severity = data.get("min_severity") or ""
    if min_severity not in ("", *MinSeverity.values):
        raise ActionError(f"Unknown severity {min_severity!r}; use {', '.join(MinSeverity.values)} or leave it "
                          "empty for every severity.", "min_severity")
    data["min_severity"] = min_severity
    return data


def action_state(action: Action) -> dict:
    return {"name": action.name, "type": action.type, "url": action.url, "email": action.email,
            "environments": action.environments, "triggers": action.triggers, "min_severity": action.min_severity,
            "enabled": action.enabled}


@transaction.atomic(durable=True)
def create_action(ctx: AuditContext, org, name: str, type: str, url: str = "", email: str = "",
                  environments=None, triggers=None, min_severity: str = "") -> tuple[Action, str | None]:
    """Create an action; returns it and, for webhooks, the signing secret (shown this once)."""
    data = validate_action(org, {"name": name, "type": type, "url": url, "email": email, "environments": environments,
                           "triggers": triggers, "min_severity": min_severity})
    if Action.objects.for_org(org).filter(name=name, deleted_at=None).exists():
        raise ActionError(f"An action named {name!r} exists.", "name", 409, "conflict")
    secret = signing.new_secret() if type == ActionType.WEBHOOK else None
    action = Action.objects.create(
        org=org, name=name, type=type, url=data["url"], email=data["email"], environments=data["environments"],
        triggers=data["triggers"], min_severity=data["min_severity"],
        secret_encrypted=signing.encrypt_secret(secret) if secret else "",
    )
    record_event(ctx, org, AuditAction.ACTION_CREATED, action, after=action_state(action))
    return action, secret


@transaction.atomic(durable=True)
def update_action(ctx: AuditContext, org, action: Action, **changes) -> Action:
    """Change name, url/email, environments, triggers or ``enabled`` (re-enabling clears the failures)."""
    action = Action.objects.select_for_update().get(pk=action.pk, org=org)
    before = action_state(action)
    merged = {**before, **{k: v for k, v in changes.items() if k in before and k != "type"}}
    if "type" in changes and changes["type"] != action.type:
        raise ActionError("The type of an action cannot change; create another action.", "type")
    data = validate_action(org, merged)
    name = changes.get("name", action.name)
    if name != action.name and Action.objects.for_org(org).filter(name=name, deleted_at=None).exists():
        raise ActionError(f"An action named {name!r} exists.", "name", 409, "conflict")
    action.name = name
    action.url, action.email = data["url"], data["email"]
    action.environments, action.triggers = data["environments"], data["triggers"]
    action.min_severity = data["min_severity"]
    if "enabled" in changes and bool(changes["enabled"]) != action.enabled:
        action.enabled = bool(changes["enabled"])
        if action.enabled:
            action.consecutive_failures = 0
            action.disabled_reason = ""
            action.disabled_at = None
        else:
            action.disabled_reason = f"disabled by {ctx.actor_label}"
            action.disabled_at = timezone.now()
    action.updated_at = timezone.now()
    action.save()
    record_event(ctx, org, AuditAction.ACTION_UPDATED, action, before=before, after=action_state(action))
    return action


def rename_environment_in_actions(org, old_name: str, new_name: str, ctx_dict: dict) -> list[int]:
    """An environment was renamed (runs in the rename's transaction, ``snapshots.hooks.environment_renamed``):
    actions listing ``old_name`` list ``new_name`` instead, each change audited as ``action.updated``.
    Deleted actions keep the name they had. Returns the ids of the actions changed."""
    ctx = AuditContext.from_dict(ctx_dict)
    changed = []
    for action in Action.objects.for_org(org).select_for_update().filter(deleted_at=None):
        if old_name not in (action.environments or []):
            continue
        before = action_state(action)
        action.environments = list(dict.fromkeys(new_name if name == old_name else name
                                                 for name in action.environments))
        action.updated_at = timezone.now()
        action.save(update_fields=["environments", "updated_at"])
        record_event(ctx, org, AuditAction.ACTION_UPDATED, action, before=before,
                     after={**action_state(action), "reason": f"environment {old_name!r} renamed to {new_name!r}"})
        changed.append(action.pk)
    return changed


@transaction.atomic(durable=True)
def delete_action(ctx: AuditContext, org, action: Action) -> None:
    """Delete (hide) an action; its delivery log is kept. Pending deliveries are skipped."""
    action = Action.objects.select_for_update().get(pk=action.pk, org=org)
    action.deleted_at = timezone.now()
    action.enabled = False
    action.save(update_fields=["deleted_at", "enabled"])
    Delivery.objects.filter(action=action, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]).update(
        status=DeliveryStatus.SKIPPED)
    record_event(ctx, org, AuditAction.ACTION_DELETED, action, before=action_state(action))


# --- alert payloads ------------------------------------------------------------------------------


def _snapshot_urls(org_slug: str, environment_name: str, index: int | None) -> dict:
    base = settings.CSM_BASE_URL
    if index is None:
        return {"html_url": base + reverse("environment-detail", args=[org_slug, environment_name]), "api_url": ""}
    return {"html_url": base + reverse("snapshot-detail", args=[org_slug, environment_name, index]),
            "api_url": f"{base}/api/v2/snapshots/{org_slug}/{environment_name}/{index}"}


def build_event(org, trigger: str, environment_name: str, description: str, snapshot: dict | None = None,
                artifact: dict | None = None) -> dict:
    """The webhook payload (Standard Webhooks body) of one alert."""
    return {
        "version": PAYLOAD_VERSION,
        "timestamp": timezone.now().isoformat(),
        "org": org.slug,
        "environment": environment_name,
        "event_type": trigger,
        "description": description,
        "snapshot": snapshot,
        "artifact": artifact,
    }


def _event_link(event: dict) -> str:
    """Where a message sends the reader: the snapshot, the unusual activity's audit event, the environment."""
    unusual = event.get("unusual_activity") or {}
    if unusual:
        return unusual["audit_event"]["html_url"]
    return (event.get("snapshot") or {}).get("html_url") or _snapshot_urls(
        event["org"], event["environment"], None)["html_url"]


def _unusual_lines(event: dict) -> list[str]:
    """What an ON_UNUSUAL_ACTIVITY message adds (Slack and email): kind, actor, address, audit event."""
    unusual = event.get("unusual_activity") or {}
    if not unusual:
        return []
    return [f"Kind: {unusual['kind']}", f"Actor: {unusual['actor']['label']} ({unusual['actor']['type']})",
            f"IP: {unusual['ip'] or 'unknown'}", f"Audit event: #{unusual['audit_event']['seq']}"]


def _slack_body(event: dict) -> dict:
    link = _event_link(event)
    artifact = event.get("artifact") or {}
    where = f"Environment: `{event['environment']}`" if event.get("environment") else f"Org: `{event['org']}`"
    lines = [f"*{event['description']}*", f"{where} · Event: `{event['event_type']}`"]
    lines += [f"`{line}`" for line in _unusual_lines(event)]
    if artifact:
        lines.append(f"Artifact: `{artifact.get('name')}` `{(artifact.get('fingerprint') or '')[:12]}`")
    lines += [f"`{line}`" for line in _vulnerability_lines(event)]
    return {
        "text": f"[csm] {event['description']} ({event.get('environment') or event['org']}) {link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in csm>"}]},
        ],
    }


def _email_body(event: dict) -> dict:
    link = _event_link(event)
    artifact = event.get("artifact") or {}
    lines = [event["description"], "", f"Org: {event['org']}", f"Environment: {event.get('environment') or '-'}",
             f"Event: {event['event_type']}", *_unusual_lines(event)]
    if artifact:
        lines += [f"Artifact: {artifact.get('name')}", f"Fingerprint: {artifact.get('fingerprint')}"]
    vulnerabilities = _vulnerability_lines(event)
    if vulnerabilities:
        lines += ["", "Vulnerabilities:", *(f"- {line}" for line in vulnerabilities)]
    lines += ["", f"Details: {link}"]
    return {"subject": f"[csm] {event.get('environment') or event['org']}: {event['description']}"[:200],
            "body": "\n".join(lines)}


# Slack and email name at most this many vulnerabilities (the webhook body carries all of them).
MESSAGE_VULNERABILITIES_UP_TO = 10


def _vulnerability_lines(event: dict) -> list[str]:
    """One line per vulnerability of a vulnerability alert (Slack and email): id, severity, where."""
    items = event.get("vulnerabilities") or []
    lines = []
    for item in items[:MESSAGE_VULNERABILITIES_UP_TO]:
        where = ", ".join(a["name"] for a in item.get("artifacts", [])) or ", ".join(item.get("components", []))
        fixed = f"; fixed in {', '.join(item['fixed'][:3])}" if item.get("fixed") else ""
        lines.append(f"{item['id']} ({item['severity']}){': ' + where if where else ''}{fixed}")
    if len(items) > MESSAGE_VULNERABILITIES_UP_TO:
        lines.append(f"... and {len(items) - MESSAGE_VULNERABILITIES_UP_TO} more")
    return lines


def render_body(action: Action, event: dict) -> str:
    if action.type == ActionType.SLACK:
        return json.dumps(_slack_body(event), separators=(",", ":"))
    if action.type == ActionType.EMAIL:
        return json.dumps(_email_body(event))
    return json.dumps(event, separators=(",", ":"), default=str)


def _event_id(action: Action, key: str) -> str:
    return "msg_" + hashlib.sha256(f"{action.pk}|{key}".encode()).hexdigest()[:32]


def raise_alert(org, trigger: str, environment_name: str, event: dict, key: str, source_at=None,
                snapshot_index: int | None = None, actions=None) -> list[Delivery]:
    """Create one delivery per action listening to ``trigger`` in ``environment_name`` and publish each
    on commit. ``key`` identifies the event: the same key never creates a second delivery (a hook run
    twice alerts once)."""
    actions = actions if actions is not None else Action.objects.for_org(org).filter(enabled=True, deleted_at=None)
    created = []
    for action in actions:
        if not action.listens_to(trigger, environment_name):
            continue
        try:
            with transaction.atomic():
                delivery = Delivery.objects.create(
                    org=org, action=action, event_id=_event_id(action, key), event_type=trigger,
                    environment_name=environment_name, snapshot_index=snapshot_index,
                    description=event["description"][:1000], body=render_body(action, event), source_at=source_at,
                )
        except IntegrityError:
            continue
        created.append(delivery)
        transaction.on_commit(lambda pk=delivery.pk: enqueue_delivery(pk))
    return created


def enqueue_delivery(delivery_id: int, countdown: float = 0) -> None:
    from .tasks import deliver

    try:
        deliver.apply_async(args=[delivery_id], countdown=countdown or None)
    except Exception:
        log.warning("could not enqueue delivery %s; the sweeper will retry it", delivery_id, exc_info=True)


@transaction.atomic(durable=True)
def test_action(ctx: AuditContext, org, action: Action) -> Delivery:
    """Send a test alert through the action now (whatever its triggers and environments)."""
    event = build_event(org, Trigger.ON_TEST, "test", f"Test alert from csm for action {action.name!r}")
    delivery = Delivery.objects.create(
        org=org, action=action, event_id=signing.new_event_id(), event_type=Trigger.ON_TEST,
        environment_name="", description=event["description"], body=render_body(action, event),
    )
    record_event(ctx, org, AuditAction.ACTION_TESTED, action, after={"delivery": delivery.event_id})
    transaction.on_commit(lambda: enqueue_delivery(delivery.pk))
    return delivery


@transaction.atomic(durable=True)
def redeliver(ctx: AuditContext, org, delivery: Delivery) -> Delivery:
    """Send a delivery again (same ``webhook-id``), whatever its outcome so far."""
    delivery = Delivery.objects.select_for_update().get(pk=delivery.pk, org=org)
    if delivery.status == DeliveryStatus.SENDING:
        raise ActionError("This delivery is being sent right now.", "", 409, "conflict")
    before = {"status": delivery.status, "attempts": delivery.attempt_count}
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    record_event(ctx, org, AuditAction.DELIVERY_REDELIVERED, ("delivery", delivery.pk, delivery.event_id),
                 before=before, after={"status": delivery.status})
    transaction.on_commit(lambda: enqueue_delivery(delivery.pk))
    return delivery


# --- sending -------------------------------------------------------------------------------------


def _send(action: Action, delivery: Delivery) -> dict:
    """One attempt → {status_code, succeeded, latency_ms, snippet, error, gone}."""
    body = delivery.body.encode()
    if action.type == ActionType.EMAIL:
        message = json.loads(delivery.body)
        started = timezone.now()
        try:
            send_mail(message["subject"], message["body"], settings.DEFAULT_FROM_EMAIL, [action.email])
        except Exception as error:  # SMTP errors of every kind count as a failed attempt
            return {"status_code": None, "succeeded": False, "latency_ms": 0, "snippet": "",
                    "error": f"{type(error).__name__}: {error}"[:1000], "gone": False}
        latency = int((timezone.now() - started).total_seconds() * 1000)
        return {"status_code": None, "succeeded": True, "latency_ms": latency, "snippet": "", "error": "",
                "gone": False}
    headers = {"Content-Type": "application/json"}
    if action.type == ActionType.WEBHOOK:
        timestamp = int(timezone.now().timestamp())
        secret = signing.decrypt_secret(action.secret_encrypted)
        headers.update({
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signing.sign(secret, delivery.event_id, timestamp, body),
        })
    try:
        response = outbound.post(action.url, body, headers, timeout=settings.CSM_WEBHOOK_TIMEOUT_SECONDS)
    except outbound.OutboundRefused as refused:
        return {"status_code": None, "succeeded": False, "latency_ms": 0, "snippet": "",
                "error": f"refused: {refused}"[:1000], "gone": False}
    except Exception as error:  # connection refused, timeouts, TLS, protocol errors
        return {"status_code": None, "succeeded": False, "latency_ms": 0, "snippet": "",
                "error": f"{type(error).__name__}: {error}"[:1000], "gone": False}
    return {"status_code": response.status, "succeeded": 200 <= response.status < 300,
            "latency_ms": response.latency_ms, "snippet": response.body[:500].decode("utf-8", "replace"),
            "error": "", "gone": response.status == 410}


def retry_delay(attempt: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, scaled by a random 0.75-1.25."""
    base = settings.CSM_WEBHOOK_RETRY_BASE_SECONDS
    delay = min(settings.CSM_WEBHOOK_RETRY_MAX_DELAY_SECONDS, base * (2 ** min(attempt - 1, 30)))
    return delay * random.uniform(0.75, 1.25)


def attempt_delivery(delivery_id: int) -> str:
    """Claim and send one delivery if it is due; record the attempt; schedule a retry or give up."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now,
    ).update(status=DeliveryStatus.SENDING, claimed_at=now)
    if not claimed:
        return "not-due"
    delivery = Delivery.objects.select_related("action", "org").get(pk=delivery_id)
    action = delivery.action
    if not action.enabled or action.deleted_at is not None:
        Delivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.SKIPPED)
        transaction.on_commit(lambda: ALERT_DELIVERIES.labels(DeliveryStatus.SKIPPED).inc())
        return DeliveryStatus.SKIPPED
    started, clock = timezone.now(), time.perf_counter()
    result = _send(action, delivery)
    seconds = time.perf_counter() - clock
    status = _record_attempt(delivery, action, started, result)
    transaction.on_commit(lambda: _count_delivery(status, seconds))
    return status


def _count_delivery(status: str, seconds: float) -> None:
    ALERT_DELIVERIES.labels(status).inc()
    ALERT_DELIVERY_SECONDS.labels(status).observe(seconds)


@transaction.atomic
def _record_attempt(delivery: Delivery, action: Action, started, result: dict) -> str:
    number = delivery.attempt_count + 1
    DeliveryAttempt.objects.create(
        org=delivery.org, delivery=delivery, number=number, started_at=started, status_code=result["status_code"],
        succeeded=result["succeeded"], latency_ms=result["latency_ms"], response_snippet=result["snippet"],
        error=result["error"],
    )
    delivery.attempt_count = number
    now = timezone.now()
    if result["succeeded"]:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.save(update_fields=["attempt_count", "status", "delivered_at"])
        Action.objects.filter(pk=action.pk).exclude(consecutive_failures=0).update(consecutive_failures=0)
        return delivery.status
    Action.objects.filter(pk=action.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    failures = Action.objects.values_list("consecutive_failures", flat=True).get(pk=action.pk)
    disable_reason = ""
    if result["gone"]:
        disable_reason = "the receiver answered 410 Gone"
    elif action.type != ActionType.EMAIL and failures >= settings.CSM_WEBHOOK_DISABLE_AFTER_FAILURES:
        disable_reason = f"{failures} failed attempts in a row"
    delay = retry_delay(number)
    deadline = delivery.created_at + timedelta(seconds=settings.CSM_WEBHOOK_RETRY_FOR_SECONDS)
    if disable_reason or now + timedelta(seconds=delay) > deadline:
        delivery.status = DeliveryStatus.FAILED
        delivery.save(update_fields=["attempt_count", "status"])
    else:
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.save(update_fields=["attempt_count", "status", "next_attempt_at"])
        transaction.on_commit(lambda: enqueue_delivery(delivery.pk, countdown=delay))
    if disable_reason:
        disable_action(action, disable_reason)
    return delivery.status


def disable_action(action: Action, reason: str) -> bool:
    """Disable an action the system gave up on, audit it and email the org's owners and admins."""
    with transaction.atomic():
        updated = Action.objects.filter(pk=action.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:500], disabled_at=timezone.now())
        if not updated:
            return False
        record_event(AuditContext.system("alerts"), action.org, AuditAction.ACTION_DISABLED, action,
                     before={"enabled": True}, after={"enabled": False, "reason": reason})
        Delivery.objects.filter(action=action, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]).update(
            status=DeliveryStatus.SKIPPED)
    recipients = sorted(set(
        Membership.objects.filter(org=action.org, role__in=[Role.OWNER, Role.ADMIN])
        .exclude(user__email="").values_list("user__email", flat=True)))
    if recipients:
        link = f"{settings.CSM_BASE_URL}/o/{action.org.slug}/alerts/{action.pk}"
        try:
            send_mail(f"[csm] Alert action {action.name!r} was disabled",
                      f"csm disabled the alert action {action.name!r} of {action.org.slug}: {reason}.\n\n"
                      f"Fix the receiver, then re-enable the action: {link}\n",
                      settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception:
            log.exception("could not email the admins of %s about action %s", action.org.slug, action.pk)
    return True


def retry_due_deliveries(now=None, limit: int = 500) -> int:
    """Sweeper: publish deliveries that are due but whose task was lost, and release stuck claims."""
    now = now or timezone.now()
    stuck_before = now - timedelta(seconds=settings.CSM_WEBHOOK_TIMEOUT_SECONDS * 3 + 60)
    stuck = Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=stuck_before)
    stuck_ids = list(stuck.values_list("pk", flat=True)[:limit])
    # a worker died mid-send: the attempt may or may not have reached the receiver (same webhook-id)
    Delivery.objects.filter(pk__in=stuck_ids, status=DeliveryStatus.SENDING).update(
        status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now())
    due = Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
                                  next_attempt_at__lte=now - timedelta(seconds=5)).exclude(pk__in=stuck_ids)
    ids = stuck_ids + list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    for pk in ids:
        enqueue_delivery(pk)
    return len(ids)


# --- alerts from snapshots and silent agents -----------------------------------------------------


def _artifact_payload(name: str, fingerprint: str, compliant: bool | None, provenance: dict | None) -> dict:
    return {"name": name, "fingerprint": fingerprint, "compliant": compliant,
            "provenance": provenance and {key: provenance.get(key, "") for key in
                                          ("flow", "commit", "commit_url", "html_url")}}


def alerts_for_snapshot(snapshot_id: int) -> list[Delivery]:
    """after_snapshot hook: raise every alert a new snapshot calls for."""
    snapshot = (Snapshot.objects.select_related("environment", "org", "report").defer("report__payload")
                .filter(pk=snapshot_id).first())  # the raw body can be 100 MB: never load it here
    if snapshot is None:
        return []
    org, env = snapshot.org, snapshot.environment
    actions = list(Action.objects.for_org(org).filter(enabled=True, deleted_at=None))
    if not any(a.environments == [] or env.name in a.environments for a in actions):
        return []
    compliance = evaluate_snapshot(snapshot_id)
    previous = SnapshotCompliance.objects.filter(environment=env, snapshot_index__lt=snapshot.index).order_by(
        "-snapshot_index").first()
    decisions = {(d["name"], d["fingerprint"]): d for d in (compliance.artifacts if compliance else [])}
    was_allowed = {(d["name"], d["fingerprint"]) for d in (previous.artifacts if previous else []) if d["allowlisted"]}
    source_at = snapshot.report.received_at if snapshot.report_id else snapshot.created_at
    snap = {"index": snapshot.index, "compliant": compliance.compliant if compliance else None,
            **_snapshot_urls(org.slug, env.name, snapshot.index)}
    raised: list[Delivery] = []

    def alert(trigger, description, key, artifact=None):
        event = build_event(org, trigger, env.name, description, snap, artifact)
        raised.extend(raise_alert(org, trigger, env.name, event, f"{snapshot.pk}|{trigger}|{key}", source_at,
                                  snapshot.index, actions))

    items = snapshot_artifacts(snapshot, include_exited=True)
    # Provenance of what changed, from the evidence vault (the stored evaluation is compact when no
    # policy applies, and the payload names the flow and commit either way).
    changed = [{"name": i["name"], "fingerprint": i.get("fingerprint") or ""} for i in items
               if i["annotation"]["type"] != "unchanged"]
    facts = gather_facts(org, changed) if changed else {}
    # Authorized: provenance in the org or an active allowlist entry; nothing is unauthorized where the
    # environment's authorization is relaxed. Decided the same way whether or not a policy applies.
    allowlisted_now = active_allowlisted([env.pk]).get(env.pk, set()) if changed else set()
    for item in items:
        name, fingerprint, change = item["name"], item.get("fingerprint") or "", item["annotation"]["type"]
        if change == "unchanged" and (name, fingerprint) not in decisions:
            continue
        decision = decisions.get((name, fingerprint))
        fact = facts.get((name, fingerprint))
        allowlisted = bool(decision and decision["allowlisted"])
        compliant = decision["compliant"] if decision else None
        provenance = fact.provenance if fact is not None else (decision or {}).get("provenance")
        payload = _artifact_payload(name, fingerprint, compliant, provenance or None)
        key = f"{name}|{fingerprint}"
        if change == "started":
            alert(Trigger.ON_STARTED_ARTIFACT, f"{name} started in {env.name}", key, payload)
            if fact is not None and not authorization(fingerprint, {fingerprint} if fact.has_provenance else set(),
                                                      allowlisted_now, env.require_authorization)["authorized"]:
                alert(Trigger.ON_UNAUTHORIZED_ARTIFACT, f"Unauthorized artifact {name} started in {env.name} "
                      "(no provenance and no allowlist entry)", key, payload)
        elif change == "exited":
            alert(Trigger.ON_EXITED_ARTIFACT, f"{name} exited from {env.name}", key, payload)
        elif change == "scaled":
            was, now = item["annotation"]["was"], item["annotation"]["now"]
            alert(Trigger.ON_SCALED_ARTIFACT, f"{name} scaled from {was} to {now} in {env.name}", key, payload)
        if allowlisted and change != "exited" and (change == "started" or (name, fingerprint) not in was_allowed):
            alert(Trigger.ON_ALLOWED_ARTIFACT, f"Allowlisted artifact {name} is running in {env.name}", key, payload)
    started = {(i["name"], i.get("fingerprint") or "") for i in items if i["annotation"]["type"] == "started"}
    raised.extend(_vulnerable_started_alerts(org, env, actions, started, snap, decisions, facts, source_at,
                                             snapshot.pk, snapshot.index))
    # Unknown (no policy) is neither: no environment-compliance alert when the environment is (or
    # becomes) unknown; unknown → compliant or non-compliant (a policy attached) is a change.
    if compliance is not None and compliance.compliant is not None and (
            previous is None and compliance.compliant is False
            or previous is not None and previous.compliant != compliance.compliant):
        if compliance.compliant:
            alert(Trigger.ON_COMPLIANT_ENV, f"{env.name} became compliant", "env")
        else:
            alert(Trigger.ON_NON_COMPLIANT_ENV, f"{env.name} became non-compliant "
                  f"({compliance.non_compliant_count + compliance.unknown_count} artifact(s) not compliant)", "env")
    return raised


# --- vulnerability alerts ------------------------------------------------------------------------


def at_or_above(min_severity: str, severity: str) -> bool:
    """Whether an action with ``min_severity`` ("" = every severity) is told about ``severity``:
    ``unknown`` is at or above any threshold (an advisory without a severity is not a low one)."""
    if not min_severity:
        return True
    return SEVERITY_RANK.get(severity, SEVERITY_RANK[VulnSeverity.UNKNOWN]) >= SEVERITY_RANK[min_severity]


def vulnerability_payload(item: dict) -> dict:
    """One vulnerability group of ``vulns.exposure.artifact_vulnerabilities`` as an alert names it."""
    first = item.get("first_matched_at")
    return {"id": item["group_id"], "osv_ids": list(item["osv_ids"]), "aliases": list(item["aliases"]),
            "severity": item["severity"], "cvss_score": item["cvss_score"], "summary": item.get("summary") or "",
            "components": list(item["components"]), "fixed": list(item.get("fixed") or []),
            "first_matched_at": first.isoformat() if hasattr(first, "isoformat") else first}


def _raise_vulnerability_alert(org, trigger: str, environment_name: str, key: str, vulnerabilities: list[dict],
                               make_event, actions, source_at=None, snapshot_index=None) -> list[Delivery]:
    """One delivery per action listening to ``trigger`` here, naming the vulnerabilities at or above its
    ``min_severity`` (none: that action gets nothing). ``make_event(vulnerabilities)`` → the event."""
    created = []
    for action in actions:
        if not action.listens_to(trigger, environment_name):
            continue
        shown = [v for v in vulnerabilities if at_or_above(action.min_severity, v["severity"])]
        if shown:
            created.extend(raise_alert(org, trigger, environment_name, make_event(shown), key, source_at,
                                       snapshot_index, [action]))
    return created


def _vulnerable_started_alerts(org, env, actions, started: set, snap: dict, decisions: dict, facts: dict,
                               source_at, snapshot_id: int, snapshot_index: int) -> list[Delivery]:
    """ON_VULNERABLE_ARTIFACT_STARTED: each artifact that started in the snapshot and has a vulnerability
    match no VEX statement suppresses (suppressed ones are not alerted: the VEX document says the artifact
    is not affected)."""
    trigger = Trigger.ON_VULNERABLE_ARTIFACT_STARTED
    if not started or not any(a.listens_to(trigger, env.name) for a in actions):
        return []
    found = artifact_vulnerabilities(org, {fingerprint for _, fingerprint in started if fingerprint})
    raised = []
    for name, fingerprint in sorted(started):
        exposed = [vulnerability_payload(v) for v in found.get(fingerprint, []) if not v.get("suppressed")]
        if not exposed:
            continue
        decision, fact = decisions.get((name, fingerprint)), facts.get((name, fingerprint))
        provenance = fact.provenance if fact is not None else (decision or {}).get("provenance")
        artifact = _artifact_payload(name, fingerprint, decision["compliant"] if decision else None,
                                     provenance or None)

        def make_event(shown, name=name, artifact=artifact):
            worst = shown[0]
            more = f" and {len(shown) - 1} more" if len(shown) > 1 else ""
            event = build_event(org, trigger, env.name, f"{name} started in {env.name} with {worst['id']} "
                                f"({worst['severity']}){more}", snap, artifact)
            event["vulnerabilities"] = shown
            return event

        key = f"{snapshot_id}|{trigger}|{name}|{fingerprint}"
        raised.extend(_raise_vulnerability_alert(org, trigger, env.name, key, exposed, make_event, actions, source_at,
                                                 snapshot_index))
    return raised


def alerts_for_new_matches(org_id: int, match_ids: list[int], cause: str) -> list[Delivery]:
    """``vulns.hooks.matches_added`` (after the matches committed): ON_NEW_VULNERABILITY_AFFECTS_RUNNING,
    one alert per environment where a newly matched artifact runs now, naming each new vulnerability and
    the running artifacts it affects. ``cause`` ``advisory``: a new or changed advisory matched; ``sbom``:
    a new SBOM of an artifact told csm what it contains — both are new knowledge of exposure, so both
    alert. Matches a VEX statement suppresses are left out; an environment with none left gets nothing."""
    trigger = Trigger.ON_NEW_VULNERABILITY_AFFECTS_RUNNING
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        return []
    actions = [a for a in Action.objects.for_org(org).filter(enabled=True, deleted_at=None) if trigger in a.triggers]
    if not actions:
        return []
    new = {}
    for fingerprint, group_id, matched_at in (VulnerabilityMatch.objects.for_org(org).filter(pk__in=list(match_ids))
                                              .values_list("artifact_fingerprint", "group_id", "matched_at")):
        new[(fingerprint, group_id)] = min(matched_at, new.get((fingerprint, group_id), matched_at))
    running = list(SnapshotEntry.objects.for_org(org)
                   .filter(to_index=None, fingerprint__in={fp for fp, _ in new}, environment__archived=False)
                   .order_by("environment__name", "name")
                   .values_list("environment_id", "environment__name", "environment__last_snapshot_index", "name",
                                "fingerprint", "running_since"))
    if not running:
        return []
    found = artifact_vulnerabilities(org, {row[4] for row in running})
    exposed = {(fp, v["group_id"]): v for fp, items in found.items() for v in items
               if (fp, v["group_id"]) in new and not v.get("suppressed")}
    by_env: dict[tuple, dict[str, dict]] = {}
    for env_id, env_name, last_index, name, fingerprint, since in running:
        groups = by_env.setdefault((env_id, env_name, last_index), {})
        for (fp, group_id), item in exposed.items():
            if fp != fingerprint:
                continue
            entry = groups.setdefault(group_id, {**vulnerability_payload(item), "artifacts": []})
            artifact = {"name": name, "fingerprint": fingerprint, "components": list(item["components"]),
                        "running_since": since.isoformat()}
            if artifact not in entry["artifacts"]:
                entry["artifacts"].append(artifact)
    source_at = min(new.values())
    raised = []
    with transaction.atomic():
        for (env_id, env_name, last_index), groups in by_env.items():
            if not groups:
                continue
            vulnerabilities = sorted(groups.values(), key=_worst_first)
            pairs = sorted((v["id"], a["fingerprint"]) for v in vulnerabilities for a in v["artifacts"])
            key = "vuln|" + hashlib.sha256(json.dumps([env_id, pairs]).encode()).hexdigest()
            snap = None
            if last_index:
                compliant = (SnapshotCompliance.objects.filter(environment_id=env_id, snapshot_index=last_index)
                             .values_list("compliant", flat=True).first())
                snap = {"index": last_index, "compliant": compliant, **_snapshot_urls(org.slug, env_name, last_index)}

            def make_event(shown, env_name=env_name, snap=snap):
                names = sorted({a["name"] for v in shown for a in v["artifacts"]})
                what = (f"{shown[0]['id']} ({shown[0]['severity']})" if len(shown) == 1
                        else f"{len(shown)} vulnerabilities (worst: {shown[0]['id']}, {shown[0]['severity']})")
                event = build_event(org, trigger, env_name, f"{what} affects {len(names)} running artifact(s) in "
                                    f"{env_name}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}", snap)
                event.update(cause=cause, vulnerabilities=shown)
                return event

            raised.extend(_raise_vulnerability_alert(org, trigger, env_name, key, vulnerabilities, make_event,
                                                     actions, source_at))
    return raised


def _worst_first(vulnerability: dict) -> tuple:
    return (LIST_ORDER.get(vulnerability["severity"], LIST_ORDER[VulnSeverity.UNKNOWN]),
            -(vulnerability["cvss_score"] or 0.0), vulnerability["id"])


def check_agent_silence(now=None) -> int:
    """Raise ON_AGENT_SILENT once per silence for every environment whose agent has not reported within
    its expected interval. ``now`` is injectable (tests drive the clock). Returns alerts raised."""
    now = now or timezone.now()
    listening = Action.objects.filter(enabled=True, deleted_at=None).values_list("org_id", "triggers")
    org_ids = {org_id for org_id, triggers in listening if Trigger.ON_AGENT_SILENT in triggers}
    if not org_ids:
        return 0
    environments = Environment.objects.filter(org_id__in=org_ids, archived=False).exclude(type="logical")
    raised = 0
    for env in environments.select_related("org"):
        if not env.is_stale(now):
            continue
        since = env.last_report_at or env.created_at
        with transaction.atomic():
            try:
                with transaction.atomic():
                    AgentSilence.objects.create(org=env.org, environment=env, silent_since=since, detected_at=now)
            except IntegrityError:
                continue  # already alerted for this silence
            minutes = int((now - since).total_seconds() // 60)
            description = (f"No report from the agent of {env.name} for {minutes} minutes "
                           f"(expected every {env.expected_report_interval_seconds} s)")
            event = build_event(env.org, Trigger.ON_AGENT_SILENT, env.name, description, None, None)
            event["silent_since"] = since.isoformat()
            raised += len(raise_alert(env.org, Trigger.ON_AGENT_SILENT, env.name, event,
                                      f"silent|{env.pk}|{since.isoformat()}", now))
    return raised


# --- unusual activity ----------------------------------------------------------------------------


def _audit_event_urls(org_slug: str, event) -> dict:
    base = settings.CSM_BASE_URL
    return {"html_url": f"{base}{reverse('audit-log', args=[org_slug])}?seq={event.seq}#event-{event.seq}",
            "api_url": f"{base}{reverse('api-audit-detail', args=[org_slug, event.pk])}"}


def unusual_activity_event(org, audit_event) -> dict:
    """The ON_UNUSUAL_ACTIVITY payload: the common fields (``environment`` null unless the activity is about
    one) and ``unusual_activity``: kind, summary, details, actor, ip, time and the audit event (seq, links)."""
    after = dict(audit_event.after or {})
    kind, summary = after.pop("kind", ""), after.pop("summary", "")
    environment = after.get("environment") or None
    event = build_event(org, Trigger.ON_UNUSUAL_ACTIVITY, environment, summary)
    event["unusual_activity"] = {
        "kind": kind, "summary": summary, "details": after,
        "actor": {"type": audit_event.actor_type, "label": audit_event.actor_label},
        "ip": audit_event.ip, "at": audit_event.created_at.isoformat(),
        "audit_event": {"id": audit_event.pk, "seq": audit_event.seq, **_audit_event_urls(org.slug, audit_event)},
    }
    return event


def alerts_for_unusual_activity(audit_event_id: int) -> list[Delivery]:
    """ON_UNUSUAL_ACTIVITY for one ``security.unusual_activity`` audit event: one delivery per listening
    action (an action limited to environments hears only activity about one of them; activity about no
    environment — a token's network, failed sign-ins — reaches the actions not limited to environments).
    Keyed by the audit event, so running the hook twice alerts once."""
    audit_event = AuditEvent.objects.select_related("org").filter(pk=audit_event_id).first()
    if audit_event is None:
        return []
    org = audit_event.org
    trigger = Trigger.ON_UNUSUAL_ACTIVITY
    actions = [a for a in Action.objects.for_org(org).filter(enabled=True, deleted_at=None) if trigger in a.triggers]
    if not actions:
        return []
    event = unusual_activity_event(org, audit_event)
    with transaction.atomic():
        return raise_alert(org, trigger, event["environment"] or "", event, f"unusual|{audit_event.pk}",
                           audit_event.created_at, actions=actions)
