"""Reads of the alerts app for other parts of csm (audit reports, dashboards).

- ``alerts_raised(org, since, until, environment_name)``: one row per alert event (a delivery per
  action listening to it), oldest first: ``{event_type, environment, snapshot_index, description,
  created_at, actions, delivered}``.
- ``agent_silences(org, since, until)``: detected silences ``{environment, silent_since, detected_at}``.
"""

from collections import OrderedDict

from .choices import DeliveryStatus, Trigger
from .models import AgentSilence, Delivery


def alerts_raised(org, since=None, until=None, environment_name: str | None = None, limit: int = 10_000) -> list:
    rows = Delivery.objects.for_org(org).exclude(event_type=Trigger.ON_TEST).select_related("action")
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    if environment_name:
        rows = rows.filter(environment_name=environment_name)
    events: OrderedDict = OrderedDict()
    for delivery in rows.order_by("created_at", "id")[:limit]:
        key = (delivery.event_type, delivery.environment_name, delivery.snapshot_index, delivery.description)
        event = events.setdefault(key, {
            "event_type": delivery.event_type, "environment": delivery.environment_name,
            "snapshot_index": delivery.snapshot_index, "description": delivery.description,
            "created_at": delivery.created_at, "actions": [], "delivered": False,
        })
        event["actions"].append(delivery.action.name)
        event["delivered"] = event["delivered"] or delivery.status == DeliveryStatus.DELIVERED
    return list(events.values())


def agent_silences(org, since=None, until=None) -> list[dict]:
    rows = AgentSilence.objects.for_org(org).select_related("environment")
    if since is not None:
        rows = rows.filter(detected_at__gte=since)
    if until is not None:
        rows = rows.filter(detected_at__lt=until)
    return [{"environment": s.environment.name, "silent_since": s.silent_since, "detected_at": s.detected_at}
            for s in rows.order_by("detected_at")]
