"""The org dashboard (``/o/<org>/``): what runs where, what changed, what is wrong, what to do first.

It reads every floor below (snapshots, evidence, policies, alerts), so it lives on the top floor. Every
selector is batched: a fixed number of queries whatever the number of environments and artifacts
(tests/reports/test_dashboard.py counts them).

- ``environment_rows(org)``: one row per active environment with its standing
  (``policies.standing.environment_standings``), the stale ("silent") flag and a 14-day change chart;
- ``attention(org)``: artifacts running now that are non-compliant (a policy decision in force says so)
  or unauthorized (no flow reported their fingerprint and no allowlist entry covers them);
- ``recent_changes(org)``: the newest started / exited / scaled events across environments;
- ``failing_deliveries(org)``: alert deliveries that failed or are waiting to retry;
- ``getting_started(org)``: the first-run checklist, each step ticked from the org's real state.
"""

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from alerts.choices import DeliveryStatus
from alerts.models import Delivery
from csm.lib import charts
from evidence.models import Artifact, Flow
from policies.models import ComplianceDecision, PolicyAttachment
from policies.standing import environment_standings
from snapshots.models import Environment, Snapshot, SnapshotEntry, SnapshotEvent
from snapshots.selectors import agent_command, change_sparkline
from tenants.models import ApiToken

CHART_DAYS = 14
ATTENTION_LIMIT = 50
CHANGES_LIMIT = 20
DELIVERIES_LIMIT = 10


def environment_rows(org, now=None) -> list[dict]:
    """``[{env, standing, stale, changes, chart}]`` for the org's active environments, by name."""
    now = now or timezone.now()
    envs = list(Environment.objects.for_org(org).filter(archived=False).order_by("name"))
    standings = environment_standings(org, envs)
    series = change_sparkline(envs, CHART_DAYS)
    rows = []
    for env in envs:
        values = series[env.pk]
        total = sum(values)
        rows.append({
            "env": env, "standing": standings[env.pk], "stale": env.is_stale(now), "changes": total,
            "chart": charts.sparkline([0, *values], width=140, height=28,
                                      title=f"{total} change{'s' if total != 1 else ''} in {CHART_DAYS} days"),
        })
    return rows


def attention(org, limit: int = ATTENTION_LIMIT) -> dict:
    """``{"items": [{environment, name, fingerprint, problem, reasons}], "more": bool}``: what runs now
    (the open ranges of the snapshot journal in active environments) and is non-compliant or
    unauthorized. Two queries."""
    active = Q(environment__archived=False)
    non_compliant = list(
        ComplianceDecision.objects.for_org(org).filter(active, to_index__isnull=True, compliant=False)
        .order_by("environment__name", "name").values_list("environment__name", "name", "fingerprint", "decision")
        [:limit + 1])
    allowlisted = ComplianceDecision.objects.filter(
        environment_id=OuterRef("environment_id"), fingerprint=OuterRef("fingerprint"), to_index__isnull=True,
        allowlisted=True)
    known = Artifact.objects.filter(org_id=org.pk, fingerprint=OuterRef("fingerprint"))
    unauthorized = list(
        SnapshotEntry.objects.for_org(org).filter(active, to_index__isnull=True)
        .exclude(environment__type="logical")
        .filter(~Exists(known), ~Exists(allowlisted))
        .order_by("environment__name", "name").values_list("environment__name", "name", "fingerprint")
        [:limit + 1])
    items = [{"environment": env, "name": name, "fingerprint": fingerprint, "problem": "non-compliant",
              "reasons": list((decision or {}).get("reasons_for_incompliance") or [])}
             for env, name, fingerprint, decision in non_compliant[:limit]]
    seen = {(item["environment"], item["name"], item["fingerprint"]): item for item in items}
    for env, name, fingerprint in unauthorized[:limit]:
        both = seen.get((env, name, fingerprint))
        if both is not None:  # non-compliant because nothing vouches for it: say the root cause
            both["problem"] = "unauthorized"
            continue
        items.append({"environment": env, "name": name, "fingerprint": fingerprint, "problem": "unauthorized",
                      "reasons": ["no provenance: no flow reported this artifact" if fingerprint
                                  else "the agent could not fingerprint it"]})
    items.sort(key=lambda i: (i["environment"], i["name"], i["fingerprint"]))
    more = len(non_compliant) > limit or len(unauthorized) > limit or len(items) > limit
    return {"items": items[:limit], "more": more}


def recent_changes(org, limit: int = CHANGES_LIMIT) -> list[dict]:
    """The newest artifact events across the org's environments, newest first. One query."""
    rows = (SnapshotEvent.objects.for_org(org).order_by("-created_at", "-id")
            .values("environment__name", "snapshot_index", "created_at", "kind", "name", "fingerprint",
                    "old_count", "new_count")[:limit])
    return [{**row, "environment": row.pop("environment__name")} for row in rows]


def failing_deliveries(org, limit: int = DELIVERIES_LIMIT) -> dict:
    """Alert deliveries that gave up or are waiting to retry, newest first: ``{"items", "count"}``."""
    rows = Delivery.objects.for_org(org).filter(status__in=[DeliveryStatus.FAILED, DeliveryStatus.RETRYING])
    return {"items": list(rows.select_related("action").order_by("-created_at", "-id")[:limit]),
            "count": rows.count()}


def getting_started(org, can_manage_tokens: bool = True) -> dict:
    """The first-run checklist: ``{"steps": [{key, title, done, url, link}], "done": bool,
    "command"}``. Each step is ticked from the org's state (five EXISTS queries). The token step links
    to the service accounts for a role that manages them, else to the person's own tokens."""
    slug = org.slug
    now = timezone.now()
    token = ApiToken.objects.for_org(org).filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)).exists()
    environment = Environment.objects.for_org(org).exists()
    snapshot = Snapshot.objects.filter(environment__org=org).exists()
    flow = Flow.objects.filter(org=org).exists()
    policy = PolicyAttachment.objects.for_org(org).exists()
    steps = [
        {"key": "token", "title": "Create an API token for the agent", "done": token,
         "url": reverse("service-account-list" if can_manage_tokens else "personal-tokens", args=[slug]),
         "link": "Service accounts and tokens" if can_manage_tokens else "Your API tokens"},
        {"key": "agent", "title": "Run csm-agent where your software runs", "done": environment,
         "url": reverse("environment-list", args=[slug]), "link": "Environments"},
        {"key": "snapshot", "title": "Receive the first snapshot", "done": snapshot,
         "url": reverse("environment-list", args=[slug]), "link": "Environments"},
        {"key": "flow", "title": "Report a build from CI (the first flow)", "done": flow,
         "url": reverse("flow-list", args=[slug]), "link": "Flows"},
        {"key": "policy", "title": "Attach a policy to an environment", "done": policy,
         "url": reverse("policy-list", args=[slug]), "link": "Policies"},
    ]
    return {"steps": steps, "done": all(step["done"] for step in steps), "command": agent_command(org)}
