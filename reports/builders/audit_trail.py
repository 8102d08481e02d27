"""Audit-trail report: who did what in the org over a range (members, roles, tokens, policies,
overrides, denied access), plus who holds access at the time of generation."""

from collections import Counter

from audit.models import AuditEvent
from reports.builders.common import PALETTE_BRAND, Buckets, ProgressFn, ReportDoc, iso, short_time
from tenants.models import ApiToken, Membership

CATEGORIES = [
    ("Members and roles", ("member.", "invitation.", "org.")),
    ("Tokens and service accounts", ("token.", "service_account.")),
    ("Policies and allowlists", ("policy.", "allowlist.")),
    ("Compliance overrides", ("attestation.overridden",)),
    ("Denied access", ("access.denied",)),
]
ALL_CONTROLS = ("CC8.1", "A.8.32", "6.5.1", "10.3.4", "9(4)(e)")


def attempts(event) -> int:
    """How many actions an event stands for: one, except a summary of refused attempts, which stands for
    the ``more`` refusals it counts (the first refusal of its window is its own ``access.denied`` event)."""
    if event.action == "access.denied_repeated":
        return int((event.after or {}).get("more") or 0)
    return 1


def category(action: str) -> str:
    for name, prefixes in CATEGORIES:
        if action.startswith(prefixes):
            return name
    return "Other activity"


def change_text(before, after, limit: int = 300) -> str:
    """``role: member → admin; name: x`` — a compact, human reading of before/after."""
    before, after = before or {}, after or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return str(after or before)[:limit]
    parts = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if key in before and key in after and old != new:
            parts.append(f"{key}: {old} → {new}")
        elif key in after and new not in (None, ""):
            parts.append(f"{key}: {new}")
        elif old is not None:
            parts.append(f"{key}: {old} → (removed)")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build(doc: ReportDoc, progress: ProgressFn) -> None:
    # The kind needs audit.view, so the events are always in; members and tokens follow their own APIs.
    if doc.includes("events") or doc.includes("actors"):
        _event_sections(doc, progress)
    progress(85, "members and tokens")
    if doc.includes("members"):
        _members_section(doc, doc.report.org)
    if doc.includes("tokens"):
        _tokens_section(doc, doc.report.org)


def _event_sections(doc: ReportDoc, progress: ProgressFn) -> None:
    org, start, end = doc.report.org, doc.date_from, doc.date_to
    events = (
        AuditEvent.objects.for_org(org)
        .filter(created_at__gte=start, created_at__lt=end, leaf__index__lte=doc.journal_index)
        .select_related("leaf").order_by("seq")
    )
    total = events.count()
    table = doc.section(
        "events", "Audit events",
        [("Time", "nowrap", 13), ("#", "", 4), ("Actor", "", 15), ("Action", "", 12), ("Target", "", 17),
         ("Change", "", 29), ("Leaf", "", 6)],
        "No audit events in this range: nobody changed members, roles, tokens or policies.",
        intro="Every recorded action in the range, in order. Each row is committed to the org journal; its leaf "
              "index and hash are listed in the Integrity section.",
        controls=ALL_CONTROLS,
    )
    by_category: Counter = Counter()
    buckets = Buckets(start, end)
    by_week: Counter = Counter()
    actors: Counter = Counter()
    for done, event in enumerate(events.iterator(chunk_size=2000), start=1):
        by_category[category(event.action)] += attempts(event)
        by_week[buckets.key(event.created_at)] += 1
        actors[event.actor_label] += 1
        target = event.target_label or event.target_id
        target = f"{event.target_type}: {target}" if event.target_type else target
        table.add(short_time(event.created_at), event.seq, event.actor_label, event.get_action_display(), target,
                  change_text(event.before, event.after), f"#{event.leaf.index}")
        doc.cite("audit event", event.leaf.index, event.leaf.leaf_hash, f"seq {event.seq} {event.action}",
                 part="events")
        if done % 2000 == 0:
            progress(10 + 70 * done // max(total, 1), f"{done} of {total} events")

    if doc.includes("events"):
        doc.summary_text = (
            f"{total} audit event{'s' if total != 1 else ''} by {len(actors)} actor{'s' if len(actors) != 1 else ''} "
            f"between {iso(start)} and {iso(end)}." if total else "No changes: no audit events in this range."
        )
    doc.figure("Audit events", total, part="events")
    doc.figure("Distinct actors", len(actors), part="actors")
    for name, _ in CATEGORIES:
        doc.figure(name, by_category.get(name, 0), part="events")
    doc.chart("events-per-period", "bar", f"Audit events per {buckets.unit}", buckets.labels,
              [("Events", buckets.values(by_week), PALETTE_BRAND)], part="events")

    top = doc.section("actors", "Most active actors", [("Actor", "", 80), ("Events", "", 20)],
                      "No actors in this range.")
    for label, count in actors.most_common(25):
        top.add(label, count)


def _members_section(doc: ReportDoc, org) -> None:
    members = doc.section(
        "members", "Members at generation time", [("Member", "", 50), ("Role", "", 20), ("Member since", "nowrap", 30)],
        "The org has no members.", intro="Who holds access now (not limited to the range).",
        controls=("CC8.1", "A.8.32"),
    )
    for membership in Membership.objects.filter(org=org).select_related("user").order_by("role", "user__email"):
        members.add(membership.user.email or membership.user.get_username(), membership.get_role_display(),
                    short_time(membership.created_at))


def _tokens_section(doc: ReportDoc, org) -> None:
    tokens = doc.section(
        "tokens", "API tokens at generation time",
        [("Token", "mono", 12), ("Name", "", 12), ("Belongs to", "", 24), ("Status", "", 9),
         ("Created", "nowrap", 14), ("Expires", "nowrap", 14), ("Last used", "nowrap", 15)],
        "The org has no API tokens.", controls=("CC8.1",),
    )
    for token in ApiToken.objects.for_org(org).select_related("service_account", "user").order_by("created_at"):
        owner = (f"service account {token.service_account.name} ({token.service_account.get_role_display()})"
                 if token.service_account_id else f"user {token.user.email}")
        tokens.add(f"{token.prefix}…", token.name, owner, token.status, short_time(token.created_at),
                   short_time(token.expires_at) or "never", short_time(token.last_used_at) or "never")
