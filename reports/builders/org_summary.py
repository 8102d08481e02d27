"""Org compliance summary: every environment over a range — compliance over time, non-compliant
periods, artifacts that ran without provenance, mean time to remediate, and the gaps when an agent
was silent."""

from collections import Counter, defaultdict

from alerts.models import AgentSilence
from evidence import selectors as evidence_selectors
from policies import selectors as policy_selectors
from policies.models import SnapshotCompliance
from policies.standing import UNAUTHORIZED, UNKNOWN, active_allowlisted, authorization, state_label
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
from snapshots.models import Environment, Report, Snapshot, SnapshotEvent

CHUNK = 5000


def build(doc: ReportDoc, progress: ProgressFn) -> None:
    org, start, end = doc.report.org, doc.date_from, doc.date_to
    environments = list(Environment.objects.for_org(org).order_by("name"))
    buckets = Buckets(start, end)
    show_compliance = doc.includes("compliance")

    snapshot_counts: Counter = Counter()
    for env_id in (Snapshot.objects.for_org(org).filter(created_at__gte=start, created_at__lt=end)
                   .values_list("environment_id", flat=True).iterator(chunk_size=CHUNK)):
        snapshot_counts[env_id] += 1
    changes_by_bucket: Counter = Counter()
    change_counts: Counter = Counter()
    started: dict[str, tuple[str, str, object]] = {}
    events = (SnapshotEvent.objects.for_org(org).filter(created_at__gte=start, created_at__lt=end)
              .order_by("created_at", "id")
              .values_list("environment__name", "created_at", "kind", "name", "fingerprint"))
    for env_name, created_at, kind, name, fingerprint in events.iterator(chunk_size=CHUNK):
        changes_by_bucket[buckets.key(created_at)] += 1
        change_counts[env_name] += 1
        if kind == "started" and fingerprint:
            started.setdefault(fingerprint, (env_name, name, created_at))
    progress(35, "changes")

    # Three states, counted apart: a snapshot evaluated without a policy is unknown, never compliant,
    # and the "compliant snapshots" percentage counts only the snapshots a policy was evaluated on.
    by_state = {True: Counter(), False: Counter(), None: Counter()}  # per bucket
    per_env_compliance: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # compliant, non-compliant, unknown
    if show_compliance:
        rows = (SnapshotCompliance.objects.filter(org=org, snapshot_at__gte=start, snapshot_at__lt=end)
                .values_list("environment_id", "snapshot_at", "compliant"))
        for env_id, snapshot_at, compliant in rows.iterator(chunk_size=CHUNK):
            by_state[compliant][buckets.key(snapshot_at)] += 1
            per_env_compliance[env_id][{True: 0, False: 1, None: 2}[compliant]] += 1
    compliant_by_bucket, non_compliant_by_bucket, unknown_by_bucket = by_state[True], by_state[False], by_state[None]
    progress(55, "compliance")

    period_table = doc.section(
        "non-compliant", "Non-compliant periods",
        [("Environment", "", 22), ("From", "nowrap", 18), ("Until", "nowrap", 18), ("Snapshots", "", 18),
         ("Duration", "", 20)],
        "No environment was non-compliant in this range.",
        intro="When each environment was out of compliance with its attached policies, and for how long.",
        controls=("CC8.1", "6.5.1", "11.5.2", "9(4)(e)"), part="compliance",
    )
    remediation: list[int] = []
    periods_by_env: Counter = Counter()
    open_periods = 0
    for env in environments if show_compliance else ():
        for period in policy_selectors.non_compliant_periods(env, since=start, until=end):
            until = period["end"] or min(end, doc.generated_at)
            seconds = max(0, int((until - period["start"]).total_seconds()))
            periods_by_env[env.pk] += 1
            if period["end"] is not None:
                remediation.append(seconds)
            else:
                open_periods += 1
            span = f"#{period['from_index']} – " + (f"#{period['to_index']}" if period["to_index"] else "now")
            period_table.add(env.name, short_time(period["start"]), short_time(period["end"]) or "still open",
                             span, duration_text(seconds))
    progress(70, "non-compliant periods")

    unauthorized = _unauthorized_section(doc, org, environments, started) if doc.includes("unauthorized") else None
    silences = _silence_section(doc, org, start, end) if doc.includes("silences") else None
    progress(85, "agent gaps")

    # The two compliance columns are policy data: without the compliance part their width goes to the name.
    envs = doc.section(
        "environments", "Environments",
        [("Environment", "", 20 if show_compliance else 48), ("Type", "", 10), ("Snapshots", "", 10),
         ("Changes", "", 10),
         *([("Compliant snapshots", "", 14), ("Non-compliant periods", "", 14)] if show_compliance else []),
         ("Last snapshot", "nowrap", 18)],
        "The org has no environments.", controls=("CC8.1", "A.8.32", "11.5.2"),
    )
    for env in environments:
        good, bad, unknown = per_env_compliance.get(env.pk, (0, 0, 0))
        if good + bad:
            share = f"{100 * good // (good + bad)}%" + (f" ({unknown} unknown)" if unknown else "")
        elif unknown:
            share = "unknown (no policy)"
        else:
            share = "not evaluated"
        verdict = [share, periods_by_env.get(env.pk, 0)] if show_compliance else []
        envs.add(env.name, env.get_type_display(), snapshot_counts.get(env.pk, 0), change_counts.get(env.name, 0),
                 *verdict, short_time(env.last_snapshot_at) or "never")

    total_compliant, total_non_compliant = sum(compliant_by_bucket.values()), sum(non_compliant_by_bucket.values())
    total_unknown = sum(unknown_by_bucket.values())
    total_policed = total_compliant + total_non_compliant
    total_evaluated = total_policed + total_unknown
    # Environments a policy was evaluated on in this range (the others' compliance is unknown).
    policed_envs = sum(1 for env in environments if sum(per_env_compliance.get(env.pk, (0, 0, 0))[:2]))
    total_changes = sum(change_counts.values())
    mttr = sum(remediation) // len(remediation) if remediation else None
    periods_text = (f" and {sum(periods_by_env.values())} non-compliant period"
                    f"{'s' if sum(periods_by_env.values()) != 1 else ''}" if show_compliance else "")
    doc.summary_text = (
        f"{len(environments)} environment{'s' if len(environments) != 1 else ''}, {total_changes} artifact change"
        f"{'s' if total_changes != 1 else ''}{periods_text} in this range."
        if total_changes or total_evaluated or periods_by_env else
        f"No changes: none of the {len(environments)} environments recorded a change in this range."
    )
    doc.figure("Environments", len(environments), part="environments")
    doc.figure("Artifact changes", total_changes, part="environments")
    doc.figure("Compliant snapshots",
               f"{100 * total_compliant // total_policed}% of {total_policed} with a policy" if total_policed
               else "n/a (no policy evaluated)", part="compliance")
    doc.figure("Snapshots by compliance", breakdown_text(total_compliant, total_non_compliant, total_unknown),
               part="compliance")
    doc.figure("Environments with a policy", f"{policed_envs} of {len(environments)}", part="compliance")
    doc.figure("Non-compliant periods", sum(periods_by_env.values()), part="compliance")
    doc.figure("Still non-compliant", open_periods, part="compliance")
    doc.figure("Mean time to remediate", duration_text(mttr), part="compliance")
    if unauthorized is not None:
        doc.figure("Unauthorized artifacts", unauthorized, part="unauthorized")
    if silences is not None:
        doc.figure("Agent-silent gaps", silences, part="silences")
    doc.chart("changes-per-period", "bar", f"Artifact changes per {buckets.unit}", buckets.labels,
              [("Changes", buckets.values(changes_by_bucket), PALETTE_BRAND)], part="environments")
    if total_evaluated:
        doc.chart("compliance", "stacked", f"Snapshots by compliance per {buckets.unit}", buckets.labels,
                  [("Compliant", buckets.values(compliant_by_bucket), PALETTE_OK),
                   ("Non-compliant", buckets.values(non_compliant_by_bucket), PALETTE_BAD),
                   (state_label(UNKNOWN), buckets.values(unknown_by_bucket), PALETTE_WARN)], part="compliance")


def _unauthorized_section(doc: ReportDoc, org, environments, started: dict) -> int | None:
    """Artifacts that started unauthorized (``policies.standing``: no provenance, no active allowlist
    entry, in an environment that requires authorization); returns how many."""
    table = doc.section(
        "unauthorized", "Unauthorized artifacts",
        [("Environment", "", 18), ("Artifact", "", 34), ("Fingerprint", "mono", 32), ("First started", "nowrap", 16)],
        "Every artifact that started in this range was reported by a flow or allowlisted.",
        intro="Artifacts no flow reported and no allowlist entry admits: nobody can say how they were built or "
              "whether they were reviewed. (Environments where an admin relaxed authorization are left out.)",
        controls=("CC8.1", "6.5.1", "11.5.2"),
    )
    by_name = {env.name: env for env in environments}
    allowlisted = active_allowlisted([env.pk for env in environments])
    fingerprints = list(started)
    for offset in range(0, len(fingerprints), CHUNK):
        chunk = fingerprints[offset:offset + CHUNK]
        found = evidence_selectors.provenance_for(org, chunk)
        for fingerprint in chunk:
            if (found.get(fingerprint) or {}).get("provenance"):
                continue
            env_name, name, when = started[fingerprint]
            env = by_name[env_name]
            how = authorization(fingerprint, set(), allowlisted.get(env.pk, set()), env.require_authorization)
            if how["authorization"] == UNAUTHORIZED:
                table.add(env_name, name, fingerprint, short_time(when))
    return len(table.rows)


def _silence_section(doc: ReportDoc, org, start, end) -> int | None:

    table = doc.section(
        "silences", "Agent-silent gaps",
        [("Environment", "", 24), ("Silent since", "nowrap", 19), ("Detected", "nowrap", 19),
         ("Next report", "nowrap", 19), ("Gap", "", 19)],
        "No agent fell silent in this range.",
        intro="Periods when an environment's agent did not report within its expected interval: what ran then "
              "is not evidenced.", controls=("10.3.4", "11.5.2"),
    )
    silences = (AgentSilence.objects.for_org(org).filter(detected_at__gte=start, detected_at__lt=end)
                .select_related("environment").order_by("detected_at"))
    for silence in silences:
        resumed = (Report.objects.for_org(org).filter(environment=silence.environment,
                                                      received_at__gt=silence.silent_since)
                   .order_by("received_at").values_list("received_at", flat=True).first())
        gap = int(((resumed or doc.generated_at) - silence.silent_since).total_seconds())
        table.add(silence.environment.name, short_time(silence.silent_since), short_time(silence.detected_at),
                  short_time(resumed) or "not yet", duration_text(gap))
    return len(table.rows)
