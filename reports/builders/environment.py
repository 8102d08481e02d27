"""Environment change report: one environment over a range — every snapshot, every artifact started /
exited / scaled, who or which token reported it, provenance and attestations of what started,
compliance at the time, and the alerts raised.

Rows are streamed (``.iterator()``) and only compact tuples are kept, so a year of a busy environment
(10,000 snapshots, 100,000 events) stays within a bounded memory.
"""

import hashlib
from collections import Counter

from alerts.models import Delivery
from evidence import selectors as evidence_selectors
from policies import selectors as policy_selectors
from policies.models import ComplianceDecision, PolicyVersion, SnapshotCompliance
from policies.standing import UNAUTHORIZED, UNKNOWN, active_allowlisted, authorization, authorization_label, state_label
from reports.builders.common import (
    PALETTE_BAD,
    PALETTE_BRAND,
    PALETTE_OK,
    PALETTE_WARN,
    Buckets,
    ProgressFn,
    ReportDoc,
    breakdown_text,
    duration_text,
    short_time,
)
from snapshots.models import Environment, Snapshot, SnapshotEvent

CHANGE_CONTROLS = ("CC8.1", "A.8.32", "6.5.1", "11.5.2", "9(4)(e)")
CHUNK = 5000


def _change_text(kind: str, old: int, new: int) -> str:
    if kind == "scaled":
        return f"scaled {old}→{new}"
    return kind


def build(doc: ReportDoc, progress: ProgressFn) -> None:
    org, start, end = doc.report.org, doc.date_from, doc.date_to
    env = Environment.objects.for_org(org).get(name=doc.report.params["environment"])
    show_compliance = doc.includes("compliance")
    compliance = _compliance_by_index(env, start, end) if show_compliance else {}

    snapshots = (Snapshot.objects.for_org(org)
                 .filter(environment=env, created_at__gte=start, created_at__lt=end, leaf__index__lte=doc.journal_index)
                 .order_by("index")
                 .values_list("index", "created_at", "reporter_label", "artifact_count", "instance_count",
                              "started_count", "exited_count", "scaled_count", "hash", "leaf__index",
                              "leaf__leaf_hash"))
    # The "Compliant" column is policy data: without the compliance part its width goes to "Reported by".
    snapshot_table = doc.section(
        "snapshots", "Snapshots",
        [("#", "", 6), ("Time", "nowrap", 14), ("Reported by", "", 22 if show_compliance else 31),
         ("Artifacts", "", 8), ("Started", "", 7), ("Exited", "", 7), ("Scaled", "", 7),
         *([("Compliant", "", 9)] if show_compliance else []), ("Snapshot hash", "mono", 16)],
        "No changes: no snapshot was recorded for this environment in this range.",
        intro="Every snapshot of the environment in the range: what the agent reported, who reported it"
              + (", and the environment's compliance as evaluated at the time." if show_compliance else "."),
        controls=CHANGE_CONTROLS,
    )
    reporters: Counter = Counter()
    compliant_by_bucket: Counter = Counter()
    non_compliant_by_bucket: Counter = Counter()
    unknown_by_bucket: Counter = Counter()
    buckets = Buckets(start, end)
    snapshot_count = 0
    for (index, created_at, reporter, artifacts, _instances, started, exited, scaled, snap_hash, leaf_index,
         leaf_hash) in snapshots.iterator(chunk_size=CHUNK):
        snapshot_count += 1
        reporters[reporter or "unknown"] += 1
        evaluated_state = index in compliance
        state = compliance.get(index)
        if state is True:
            compliant_by_bucket[buckets.key(created_at)] += 1
        elif state is False:
            non_compliant_by_bucket[buckets.key(created_at)] += 1
        elif evaluated_state:  # evaluated without a policy: unknown, never counted as compliant
            unknown_by_bucket[buckets.key(created_at)] += 1
        verdict = ([{True: "yes", False: "NO", None: "unknown"}[state] if evaluated_state else "n/a"]
                   if show_compliance else [])
        snapshot_table.add(index, short_time(created_at), reporter or "unknown", artifacts, started, exited, scaled,
                           *verdict, snap_hash[:16])
        doc.cite("snapshot", leaf_index, leaf_hash, f"{env.name}#{index}", part="snapshots")
    progress(30, f"{snapshot_count} snapshots")

    events = (SnapshotEvent.objects.for_org(org)
              .filter(environment=env, created_at__gte=start, created_at__lt=end)
              .order_by("snapshot_index", "id")
              .values_list("created_at", "snapshot_index", "kind", "name", "fingerprint", "old_count", "new_count"))
    event_table = doc.section(
        "events", "Artifact changes",
        [("Time", "nowrap", 14), ("Snap", "", 6), ("Change", "", 10), ("Artifact", "", 36),
         ("Fingerprint", "mono", 32)],
        "No changes: no artifact started, exited or scaled in this range.",
        intro="Every artifact that started, exited or scaled, in order.",
        controls=CHANGE_CONTROLS,
    )
    kinds: Counter = Counter()
    per_bucket: Counter = Counter()
    started: dict[str, str] = {}
    total = events.count()
    last_time, when, bucket = None, "", None
    for done, (created_at, snap_index, kind, name, fingerprint, old, new) in enumerate(
            events.iterator(chunk_size=CHUNK), start=1):
        if done % 20_000 == 0:
            progress(30 + 25 * done // total, f"{done} of {total} changes")
        if created_at != last_time:  # the events of one snapshot share its time: format it once
            last_time, when, bucket = created_at, short_time(created_at), buckets.key(created_at)
        kinds[kind] += 1
        per_bucket[bucket] += 1
        if kind == "started" and fingerprint:
            started.setdefault(fingerprint, name)
        event_table.rows.append([when, snap_index, _change_text(kind, old, new), name, fingerprint or "unknown"])
    total_events = sum(kinds.values())
    progress(55, f"{total_events} changes")

    unauthorized = _provenance_section(doc, org, env, started) if doc.includes("provenance") else None
    progress(70, "provenance")
    periods = _non_compliant_section(doc, env, start, end) if show_compliance else None
    if show_compliance:
        _policy_decisions_section(doc, org, env, start, end)
    alert_count = _alerts_section(doc, org, env, start, end) if doc.includes("alerts") else None
    progress(80, "alerts")

    policed = sum(compliant_by_bucket.values()) + sum(non_compliant_by_bucket.values())
    unknown = sum(unknown_by_bucket.values())
    evaluated = policed + unknown
    doc.summary_text = (
        f"Environment {env.name} ({env.get_type_display()}): {snapshot_count} snapshot"
        f"{'s' if snapshot_count != 1 else ''} and {total_events} artifact change{'s' if total_events != 1 else ''} "
        f"reported by {len(reporters)} reporter{'s' if len(reporters) != 1 else ''} in this range."
        if snapshot_count or total_events else
        f"No changes: environment {env.name} recorded no snapshot and no artifact change in this range."
    )
    doc.figure("Snapshots", snapshot_count, part="snapshots")
    doc.figure("Artifacts started", kinds.get("started", 0), part="events")
    doc.figure("Artifacts exited", kinds.get("exited", 0), part="events")
    doc.figure("Artifacts scaled", kinds.get("scaled", 0), part="events")
    doc.figure("Distinct artifacts started", len(started), part="events")
    if unauthorized is not None:
        doc.figure("Unauthorized artifacts started", unauthorized, part="provenance")
    doc.figure("Reporters", len(reporters), part="reporters")
    if evaluated:
        # Only snapshots a policy was evaluated on count towards "compliant"; unknown is shown apart.
        doc.figure("Compliant snapshots", f"{100 * sum(compliant_by_bucket.values()) // policed}%" if policed
                   else "n/a (no policy)", part="compliance")
        doc.figure("Snapshots by compliance", breakdown_text(sum(compliant_by_bucket.values()),
                                                              sum(non_compliant_by_bucket.values()), unknown),
                   part="compliance")
    if periods is not None:
        doc.figure("Non-compliant periods", periods, part="compliance")
    if alert_count is not None:
        doc.figure("Alerts raised", alert_count, part="alerts")
    doc.chart("changes-per-period", "bar", f"Artifact changes per {buckets.unit}", buckets.labels,
              [("Changes", buckets.values(per_bucket), PALETTE_BRAND)], part="events")
    if evaluated:
        doc.chart("compliance", "stacked", f"Snapshots by compliance per {buckets.unit}", buckets.labels,
                  [("Compliant", buckets.values(compliant_by_bucket), PALETTE_OK),
                   ("Non-compliant", buckets.values(non_compliant_by_bucket), PALETTE_BAD),
                   (state_label(UNKNOWN), buckets.values(unknown_by_bucket), PALETTE_WARN)], part="compliance")
    who = doc.section("reporters", "Who reported", [("Reporter (user or token)", "", 80), ("Snapshots", "", 20)],
                      "Nobody reported in this range.", controls=("CC8.1", "10.3.4"))
    for label, count in reporters.most_common():
        who.add(label, count)


def _compliance_by_index(env, start, end) -> dict[int, bool]:
    rows = (SnapshotCompliance.objects.filter(environment=env, snapshot_at__gte=start, snapshot_at__lt=end)
            .values_list("snapshot_index", "compliant"))
    return dict(rows.iterator(chunk_size=CHUNK))


def _provenance_section(doc: ReportDoc, org, env, started: dict[str, str]) -> int | None:
    """The provenance table; returns how many started artifacts are unauthorized (no provenance, no
    active allowlist entry, in an environment that requires authorization: ``policies.standing``)."""
    table = doc.section(
        "provenance", "Provenance and evidence of started artifacts",
        [("Artifact", "", 24), ("Fingerprint", "mono", 22), ("Flow / trail", "", 14), ("Commit", "mono", 12),
         ("Evidence", "", 10), ("Why", "", 18)],
        "No artifact started in this range.",
        intro="For each artifact that started: the flow and commit that built it (from the evidence vault) and "
              "whether its required attestations were all present and compliant.",
        controls=("CC8.1", "A.8.32", "6.5.1", "9(4)(e)"),
    )
    fingerprints = list(started)
    unauthorized = 0
    allowlisted = active_allowlisted([env.pk]).get(env.pk, set())
    for offset in range(0, len(fingerprints), CHUNK):
        chunk = fingerprints[offset:offset + CHUNK]
        found = evidence_selectors.provenance_for(org, chunk)
        for fingerprint in chunk:
            info = found.get(fingerprint) or {}
            if not info.get("provenance"):
                how = authorization(fingerprint, set(), allowlisted, env.require_authorization)["authorization"]
                unauthorized += how == UNAUTHORIZED
                table.add(started[fingerprint], fingerprint, "none", "",
                          "UNAUTHORIZED" if how == UNAUTHORIZED else authorization_label(how),
                          "No flow reported this artifact")
                continue
            verdict = {True: "compliant", False: "NOT compliant", None: "unknown"}[info.get("artifact_compliant")]
            flow = info.get("flow") or ""
            if info.get("trail"):
                flow = f"{flow} / {info['trail']}"
            table.add(started[fingerprint], fingerprint, flow, (info.get("git_commit") or "")[:12], verdict,
                      "; ".join(info.get("compliance_reasons") or [])[:300])
    return unauthorized


def _non_compliant_section(doc: ReportDoc, env, start, end) -> int | None:
    periods = policy_selectors.non_compliant_periods(env, since=start, until=end)
    table = doc.section(
        "non-compliant", "Non-compliant periods",
        [("From", "nowrap", 22), ("Until", "nowrap", 22), ("Snapshots", "", 20), ("Duration", "", 36)],
        "No non-compliant period in this range (a range without a policy attached is unknown, not compliant: "
        "see the snapshots' compliance column).",
        controls=("CC8.1", "11.5.2", "9(4)(e)"), part="compliance",
    )
    for period in periods:
        until = period["end"] or min(end, doc.generated_at)
        seconds = int((until - period["start"]).total_seconds())
        table.add(short_time(period["start"]), short_time(period["end"]) or "still non-compliant",
                  f"#{period['from_index']} – {('#' + str(period['to_index'])) if period['to_index'] else 'now'}",
                  duration_text(seconds))
    return len(periods)


POLICY_DECISION_ROWS = 2000


def _policy_decisions_section(doc: ReportDoc, org, env, start, end) -> int:
    """The decisions taken in the range that did not find an artifact compliant, each naming its policy
    version and hash (YAML or Rego) and, for Rego, the hash of the input it was taken on (the input is
    kept: ``GET /api/v2/policies/{org}/inputs/{sha256}``), so each can be re-run. Returns the count."""
    table = doc.section(
        "policy-decisions", "Policy decisions",
        [("Decided", "nowrap", 13), ("Snap", "", 5), ("Artifact", "", 16), ("Policy", "", 14),
         ("Policy hash", "mono", 12), ("Input hash", "mono", 12), ("Decision", "", 9), ("Reasons", "", 19)],
        "No policy decision found an artifact non-compliant or unknown in this range.",
        intro="Every decision in the range that did not find an artifact compliant: the policy version and the "
              "SHA-256 of its source; for a Rego policy also the SHA-256 of the input it was evaluated on, which "
              "csm keeps so the decision can be re-run (opa eval / kosli evaluate input).",
        controls=("CC8.1", "11.5.2"), part="compliance",
    )
    hashes = {}
    for name, version, content in (PolicyVersion.objects.for_org(org).values_list("policy__name", "version", "content")
                                   .iterator(chunk_size=CHUNK)):
        hashes[(name, version)] = hashlib.sha256(content.encode("utf-8")).hexdigest()
    rows = (ComplianceDecision.objects.filter(environment=env, decided_at__gte=start, decided_at__lt=end)
            .exclude(status="compliant").order_by("from_index", "name", "id")
            .values_list("decided_at", "from_index", "name", "decision"))
    count = 0
    for decided_at, index, name, decision in rows.iterator(chunk_size=CHUNK):
        for item in decision.get("policy_decisions") or []:
            if item.get("status") == "COMPLIANT":
                continue
            count += 1
            if count > POLICY_DECISION_ROWS:
                continue
            policy_hash = item.get("policy_sha256") or hashes.get((item["policy_name"], item["policy_version"]), "")
            reasons = [reason for rule in item.get("rule_evaluations") or [] for reason in rule.get("reasons") or []]
            table.add(short_time(decided_at), index, name,
                      f"{item['policy_name']} v{item['policy_version']} ({item.get('policy_format', 'yaml')})",
                      policy_hash[:12], (item.get("input_sha256") or "")[:12], item["status"].lower(),
                      "; ".join(reasons)[:300])
    if count > POLICY_DECISION_ROWS:
        table.add("", "", f"… and {count - POLICY_DECISION_ROWS} more", "", "", "", "", "")
    return count


def _alerts_section(doc: ReportDoc, org, env, start, end) -> int | None:
    rows = (Delivery.objects.for_org(org)
            .filter(environment_name=env.name, created_at__gte=start, created_at__lt=end)
            .exclude(event_type="ON_TEST").order_by("created_at", "id")
            .values_list("created_at", "event_type", "snapshot_index", "description", "action__name", "status"))
    table = doc.section(
        "alerts", "Alerts raised",
        [("Time", "nowrap", 14), ("Trigger", "", 18), ("Snap", "", 6), ("What", "", 34), ("Sent to", "", 14),
         ("Delivery", "", 10)],
        "No alert was raised for this environment in this range.",
        controls=("11.5.2",),
    )
    for created_at, trigger, snap_index, description, action, status in rows.iterator(chunk_size=CHUNK):
        table.add(short_time(created_at), trigger, snap_index or "", description, action, status)
    return len(table.rows)
