"""Vulnerability exposure report: one vulnerability (asked for by any alias) — every window during which
an affected artifact ran (environment, artifact, fingerprint, from / to time and snapshot), the matched
components and the versions that fix them, who deployed what (the snapshot's reporter and the artifact's
provenance from the evidence vault), when it was fixed in each environment and what replaced the last
affected artifact, VEX suppressions with their justification, running artifacts whose coverage is
unknown (no SBOM), and the advisory itself.

The windows come from ``vulns.exposure`` (read from the snapshot journal, never copied). Every snapshot
that opens or closes a window, every SBOM and VEX attestation and every flow report the report relies
on is cited with its journal leaf, so the proof bundle lets an auditor check them offline.
"""

import datetime
from collections import defaultdict

from django.db.models import Q

from evidence.models import Artifact, Attestation
from reports.builders.common import PALETTE_BAD, ProgressFn, ReportDoc, duration_text, iso, short_time
from snapshots.models import Environment, Snapshot, SnapshotEvent
from vulns import exposure
from vulns.choices import VulnSeverity
from vulns.models import Advisory, AdvisoryAlias, ComponentPackage, VulnerabilityMatch

# What exposure windows evidence: vulnerability management (PCI DSS 6.3.3 is not in the appendix; the
# change-management controls are — each window starts and ends with a recorded change).
CONTROLS = ("CC8.1", "11.5.2", "9(4)(e)")
CHUNK = 2000


def build(doc: ReportDoc, progress: ProgressFn) -> None:
    org, params = doc.report.org, doc.report.params
    group_id = _current_group(params)
    env = None
    if params.get("environment"):
        # renamed or gone since the request: fail, never widen the report to every environment
        env = Environment.objects.for_org(org).filter(name=params["environment"]).first()
        if env is None:
            raise ValueError(f"environment {params['environment']!r} no longer exists in this org (renamed?); "
                             "request the report again")
    advisories = list(Advisory.objects.filter(group_id=group_id).order_by("osv_id"))
    aliases = _aliases(advisories)
    answer = exposure.vulnerability_exposure(org, group_id, environment=env)
    progress(20, "exposure windows")

    running = _in_scope(doc, env, answer.get("running") or [])
    history = _in_scope(doc, env, answer.get("history") or [])
    suppressed = _in_scope(doc, env, answer.get("suppressed") or [])
    uncovered = [item for item in answer.get("coverage_unknown") or []
                 if env is None or item.get("environment") == env.name]
    windows = sorted(running + history, key=lambda w: (w["environment"], w["from"] is not None,
                                                       w["from"] or doc.generated_at, w["artifact_name"]))

    if doc.includes("advisory"):
        _advisory_sections(doc, advisories, aliases)
    if doc.includes("windows"):
        _windows_section(doc, windows)
        _cite_window_snapshots(doc, org, windows, "windows")
    progress(40, f"{len(windows)} windows")
    fingerprints = sorted({w["fingerprint"] for w in windows if w["fingerprint"]})
    if doc.includes("components"):
        _components_section(doc, org, group_id, fingerprints)
    if doc.includes("provenance"):
        _provenance_section(doc, org, windows)
    progress(60, "provenance")
    fixes = _fixes_section(doc, org, group_id, running, history) if doc.includes("fixes") else None
    progress(75, "fixes")
    if doc.includes("suppressed"):
        _suppressed_section(doc, org, suppressed)
    if doc.includes("coverage"):
        _coverage_section(doc, org, uncovered)
    progress(80, "coverage")
    _summary(doc, group_id, advisories, running, history, suppressed, uncovered, fixes)
    # a snapshot can open one window and close another: cite each record once
    doc.cited = list({cited[1]: cited for cited in doc.cited}.values())


def _current_group(params: dict) -> str:
    """The group the asked id belongs to now (an import may have merged groups since the request); the
    group resolved at request time when the id is no longer known."""
    return exposure.resolve_group(params["vulnerability"]) or params["group_id"]


def _aliases(advisories: list[Advisory]) -> set[str]:
    ids = {advisory.osv_id for advisory in advisories}
    ids |= {alias for advisory in advisories for alias in advisory.aliases or []}
    ids |= set(AdvisoryAlias.objects.filter(advisory__in=advisories).values_list("alias", flat=True))
    return ids


def _in_scope(doc: ReportDoc, env, windows: list[dict]) -> list[dict]:
    """Windows of the environment asked for (if any) that overlap the report's range (if any)."""
    start, end = doc.date_from, doc.date_to
    kept = []
    for window in windows:
        if env is not None and window.get("environment") != env.name:
            continue
        begun, ended = window["from"], window["to"]
        if start is not None and ((begun is not None and begun >= end) or (ended is not None and ended <= start)):
            continue
        kept.append(window)
    return kept


def _span(window: dict) -> str:
    return f"#{window['from_index']} – " + (f"#{window['to_index']}" if window.get("to_index") else "now")


def _exposed_for(doc: ReportDoc, window: dict) -> str:
    if window["from"] is None:  # its opening snapshot is not readable (cannot happen short of tampering)
        return "n/a"
    end = window["to"] or doc.generated_at
    length = duration_text(int((end - window["from"]).total_seconds()))
    return length if window["to"] else f"{length}, running"


# --- the advisory ----------------------------------------------------------------------------------------

def _fixed_versions(affected) -> list[str]:
    fixed = []
    for entry in affected.ranges or []:
        for event in entry.get("events") or []:
            if event.get("fixed") and event["fixed"] not in fixed:
                fixed.append(event["fixed"])
    return fixed


def _range_text(affected) -> str:
    """OSV ranges as people read them: ``>= 0, < 3.1.3`` (``last_affected`` as ``<=``)."""
    parts = []
    for entry in affected.ranges or []:
        bounds = []
        for event in entry.get("events") or []:
            if event.get("introduced"):
                bounds.append(f">= {event['introduced']}")
            if event.get("fixed"):
                bounds.append(f"< {event['fixed']}")
            if event.get("last_affected"):
                bounds.append(f"<= {event['last_affected']}")
        if bounds:
            parts.append(f"{entry.get('type', '').lower()} " + ", ".join(bounds))
    if affected.versions:
        listed = ", ".join(affected.versions[:12]) + (f" (+{len(affected.versions) - 12} more)"
                                                       if len(affected.versions) > 12 else "")
        parts.append(f"versions {listed}")
    return "; ".join(parts) or "every version"


def _advisory_sections(doc: ReportDoc, advisories: list[Advisory], aliases: set[str]) -> None:
    table = doc.section(
        "advisory", "The advisory",
        [("Field", "", 18), ("Value", "", 82)],
        "No advisory: the vulnerability's records are no longer in csm's vulnerability data.",
        intro="The vulnerability as csm's imported advisory data (OSV) states it when the report was generated. "
              "Advisory data is global, not part of the org's journal: each record's SHA-256 and modification "
              "time identify the version used.",
        part="advisory",
    )
    for advisory in advisories:
        withdrawn = f" (WITHDRAWN {iso(advisory.withdrawn)})" if advisory.withdrawn else ""
        table.add("Record", f"{advisory.osv_id}{withdrawn}")
        table.add("Summary", advisory.summary or (advisory.details or "")[:600] or "(none given)")
        table.add("Severity", _severity_text(advisory))
        if advisory.cvss_vector:
            table.add("CVSS vector", advisory.cvss_vector)
        table.add("Published", iso(advisory.published) or "not stated")
        table.add("Modified", iso(advisory.modified))
        table.add("Source", advisory.source or "not recorded")
        table.add("Record SHA-256", advisory.content_sha256)
        for reference in advisory.references or []:
            url = reference.get("url") if isinstance(reference, dict) else str(reference)
            kind = reference.get("type", "") if isinstance(reference, dict) else ""
            if url:
                table.add("Reference", f"{kind.lower()} {url}".strip())
    if advisories:
        table.rows.insert(0, ["Aliases", ", ".join(sorted(aliases))])
    affected = doc.section(
        "affected", "Affected packages and fixed versions",
        [("Record", "", 18), ("Ecosystem", "", 14), ("Package", "", 22), ("Affected", "", 30), ("Fixed in", "", 16)],
        "The advisory names no affected package.",
        intro="Each affected package the advisory names, the versions it affects and the versions that fix it.",
        part="advisory",
    )
    for advisory in advisories:
        for package in advisory.affected.all():
            affected.add(advisory.osv_id, package.ecosystem, package.name, _range_text(package),
                         ", ".join(_fixed_versions(package)) or "no fix published")


def _severity_text(advisory: Advisory) -> str:
    label = VulnSeverity(advisory.severity).label
    if advisory.cvss_score is not None:
        # canonical JSON has no floats: the score is text
        return f"{label} (CVSS {advisory.cvss_score:.1f})"
    if advisory.severity == VulnSeverity.UNKNOWN:
        return "Unknown (no score published; not treated as low)"
    return label


def _group_severity(group_id: str) -> str:
    """The group's severity as the API and pages state it (``vulns.exposure.group_advisories``: the worst
    any of its advisories states, the highest CVSS score)."""
    group = exposure.group_advisories([group_id]).get(group_id)
    if group is None:
        return VulnSeverity.UNKNOWN.label
    score = f" (CVSS {group['cvss_score']:.1f})" if group["cvss_score"] is not None else ""
    return VulnSeverity(group["severity"]).label + score


# --- windows, components, provenance -------------------------------------------------------------------

def _windows_section(doc: ReportDoc, windows: list[dict]) -> None:
    table = doc.section(
        "windows", "Exposure windows",
        [("Environment", "", 13), ("Artifact", "", 17), ("Fingerprint", "mono", 20), ("From", "nowrap", 14),
         ("Until", "nowrap", 14), ("Snapshots", "", 10), ("Exposed for", "", 12)],
        "No window: no affected artifact ran here (in this range). Artifacts without an SBOM are listed under "
        "Coverage unknown.",
        intro="Every interval during which an artifact affected by this vulnerability ran, from the snapshot in "
              "which it started to the snapshot in which it was gone (\"now\": it still runs). Suppressed (VEX) "
              "artifacts are listed apart.",
        controls=CONTROLS,
    )
    for window in windows:
        table.add(window["environment"], window["artifact_name"], window["fingerprint"] or "unknown",
                  short_time(window["from"]), short_time(window["to"]) if window["to"] else "still running",
                  _span(window), _exposed_for(doc, window))


def _cite_window_snapshots(doc: ReportDoc, org, windows: list[dict], part: str) -> None:
    """Cite the snapshot opening and the one closing each window (their leaves prove when it ran)."""
    if not windows:
        return
    wanted = _snapshots_of(windows, closing=True)
    rows = (Snapshot.objects.for_org(org).filter(wanted, leaf__index__lte=doc.journal_index)
            .order_by("leaf__index").values_list("environment__name", "index", "leaf__index", "leaf__leaf_hash"))
    for env_name, index, leaf_index, leaf_hash in rows:
        doc.cite("snapshot", leaf_index, leaf_hash, f"{env_name}#{index}", part=part)


def _snapshots_of(windows: list[dict], closing: bool) -> Q:
    """The snapshots opening (and, with ``closing``, closing) the windows: one condition per environment,
    however many windows."""
    indexes: dict[int, set[int]] = defaultdict(set)
    for window in windows:
        indexes[window["environment_id"]].add(window["from_index"])
        if closing and window.get("to_index"):
            indexes[window["environment_id"]].add(window["to_index"])
    wanted = Q()
    for environment_id, found in indexes.items():
        wanted |= Q(environment_id=environment_id, index__in=sorted(found))
    return wanted


def _components_section(doc: ReportDoc, org, group_id: str, fingerprints: list[str]) -> None:
    table = doc.section(
        "components", "Matched components",
        [("Artifact fingerprint", "mono", 20), ("Component (purl)", "", 40), ("Advisory", "", 16),
         ("Fixed in", "", 14)],
        "No matched component (no affected artifact ran here).",
        intro="The SBOM components of each affected artifact that the advisory matches, with the versions "
              "that fix them; each SBOM attestation is cited in the Integrity section.",
        controls=("CC8.1",),
    )
    sboms: set[int] = set()
    for offset in range(0, len(fingerprints), CHUNK):
        rows = (VulnerabilityMatch.objects.for_org(org)
                .filter(group_id=group_id, artifact_fingerprint__in=fingerprints[offset:offset + CHUNK])
                .order_by("artifact_fingerprint", "package__purl", "advisory__osv_id")
                .values_list("artifact_fingerprint", "package__purl", "advisory__osv_id", "fixed",
                             "package__attestation_id"))
        for fingerprint, purl, osv_id, fixed, attestation_id in rows:
            table.add(fingerprint, purl, osv_id, ", ".join(fixed or []) or "no fix published")
            sboms.add(attestation_id)
    _cite_attestations(doc, org, sboms, "SBOM", "components")


def _cite_attestations(doc: ReportDoc, org, ids, what: str, part: str) -> None:
    rows = (Attestation.objects.for_org(org).filter(pk__in=list(ids), leaf__index__lte=doc.journal_index)
            .order_by("leaf__index").values_list("name", "artifact_fingerprint", "leaf__index", "leaf__leaf_hash"))
    for name, fingerprint, leaf_index, leaf_hash in rows:
        doc.cite("attestation", leaf_index, leaf_hash, f"{what} {name} of {fingerprint[:12]}", part=part)


def _provenance_section(doc: ReportDoc, org, windows: list[dict]) -> None:
    """Who deployed what: per window, the reporter of the snapshot that started it, and every flow report of
    the artifact from the evidence vault (flow, trail, commit, build URL, who reported it)."""
    table = doc.section(
        "provenance", "Who deployed what",
        [("Environment", "", 11), ("Artifact", "", 13), ("Started in", "", 7), ("Snapshot reported by", "", 14),
         ("Flow / trail", "", 14), ("Commit", "mono", 12), ("Build", "", 17), ("Artifact reported by", "", 12)],
        "No affected artifact ran here.",
        intro="For each window: who reported the snapshot in which the affected artifact started, and the "
              "artifact's provenance from the evidence vault — the flow and trail that built it, the commit, "
              "the build and who reported it. An artifact no flow reported has no provenance: it is "
              "unauthorised wherever it runs.",
        controls=("CC8.1", "A.8.32", "6.5.1", "9(4)(e)"),
    )
    reporters = _snapshot_reporters(doc, org, windows)
    fingerprints = sorted({w["fingerprint"] for w in windows if w["fingerprint"]})
    covered = Q(leaf__isnull=True) | Q(leaf__index__lte=doc.journal_index)
    records: dict[str, list[Artifact]] = defaultdict(list)
    for offset in range(0, len(fingerprints), CHUNK):
        chunk = fingerprints[offset:offset + CHUNK]
        for record in (Artifact.objects.for_org(org).filter(covered, fingerprint__in=chunk)
                       .select_related("flow", "trail", "leaf").order_by("created_at", "id")):
            records[record.fingerprint].append(record)
    for window in windows:
        reporter = reporters.get((window["environment"], window["from_index"]), "unknown")
        found = records.get(window["fingerprint"]) or []
        if not found:
            table.add(window["environment"], window["artifact_name"], f"#{window['from_index']}", reporter,
                      "none: NO PROVENANCE", "", "", "")
        for record in found:
            flow = record.flow.name + (f" / {record.trail.name}" if record.trail_id else "")
            table.add(window["environment"], window["artifact_name"], f"#{window['from_index']}", reporter, flow,
                      record.git_commit[:12], record.build_url, record.reported_by or "unknown")
    for fingerprint in fingerprints:
        for record in records.get(fingerprint, []):
            if record.leaf_id:
                doc.cite("artifact", record.leaf.index, record.leaf.leaf_hash,
                         f"{record.flow.name} {record.template_name or record.filename}", part="provenance")


def _snapshot_reporters(doc: ReportDoc, org, windows: list[dict]) -> dict[tuple[str, int], str]:
    if not windows:
        return {}
    rows = (Snapshot.objects.for_org(org).filter(_snapshots_of(windows, closing=False))
            .values_list("environment__name", "index", "reporter_label"))
    return {(name, index): label or "unknown" for name, index, label in rows}


# --- when it was fixed -----------------------------------------------------------------------------------

def _fixes_section(doc: ReportDoc, org, group_id: str, running: list[dict], history: list[dict]) -> dict:
    """One row per environment where an affected artifact ran: still exposed, or when the last affected
    artifact left and what started in that same snapshot (and whether that replacement is affected).
    Returns ``{"fixed": [env...], "exposed": [env...]}``."""
    table = doc.section(
        "fixes", "When it was fixed",
        [("Environment", "", 12), ("Status", "", 11), ("Last affected left", "nowrap", 14), ("Snapshot", "", 8),
         ("Last affected artifact", "", 17), ("Replaced by", "", 20), ("Replacement affected?", "", 18)],
        "No affected artifact ran in any environment here, so there was nothing to fix.",
        intro="Per environment: when the last affected artifact stopped running (the snapshot in which it was "
              "gone), what started in that same snapshot, and whether the replacement is affected too (from "
              "its SBOM). An environment where an affected artifact still runs is STILL EXPOSED.",
        controls=("CC8.1", "11.5.2", "9(4)(e)"),
    )
    environments = sorted({w["environment"] for w in running + history})
    still = {w["environment"] for w in running}
    last_ended: dict[str, dict] = {}
    for window in history:
        if window["to"] is None:
            continue
        current = last_ended.get(window["environment"])
        if current is None or (window["to_index"], window["artifact_name"]) > (current["to_index"],
                                                                                current["artifact_name"]):
            last_ended[window["environment"]] = window
    replacements = _replacements(org, last_ended)
    verdicts = _affected_verdicts(org, group_id, {fp for items in replacements.values() for _, fp in items})
    for name in environments:
        if name in still:
            since = min((w["from"] for w in running if w["environment"] == name and w["from"]), default=None)
            artifacts = ", ".join(sorted({w["artifact_name"] for w in running if w["environment"] == name}))
            table.add(name, "STILL EXPOSED", "", "", artifacts, f"running since {short_time(since)}", "")
            continue
        window = last_ended[name]
        started = replacements.get(name) or []
        same_name = [item for item in started if item[0] == window["artifact_name"]]
        shown = same_name or started
        replaced = "; ".join(f"{artifact} ({fp[:12] if fp else 'unknown fingerprint'})" for artifact, fp in shown)
        verdict = "; ".join(verdicts.get(fp, "unknown: no fingerprint") for _, fp in shown)
        table.add(name, "fixed", short_time(window["to"]), f"#{window['to_index']}",
                  f"{window['artifact_name']} ({window['fingerprint'][:12]})",
                  replaced or "nothing (the artifact was removed)", verdict or "n/a")
    return {"fixed": [name for name in environments if name not in still], "exposed": sorted(still),
            "last_fixed": max((last_ended[name]["to"] for name in environments if name not in still), default=None)}


def _replacements(org, last_ended: dict[str, dict]) -> dict[str, list[tuple[str, str]]]:
    """Per environment: the artifacts (name, fingerprint) that started in the snapshot where its last affected
    artifact was gone."""
    wanted = Q()
    for window in last_ended.values():
        wanted |= Q(environment_id=window["environment_id"], snapshot_index=window["to_index"])
    if not last_ended:
        return {}
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for env_name, artifact, fingerprint in (SnapshotEvent.objects.for_org(org).filter(wanted, kind="started")
                                            .order_by("name", "id").values_list("environment__name", "name",
                                                                               "fingerprint")):
        found[env_name].append((artifact, fingerprint))
    return found


def _affected_verdicts(org, group_id: str, fingerprints: set[str]) -> dict[str, str]:
    """Whether each replacement is affected: by ``vulns.exposure.artifact_vulnerabilities`` (suppressed by
    VEX said so), and, when it has no match, whether csm could tell at all (an SBOM of it is indexed)."""
    fingerprints = {fp for fp in fingerprints if fp}
    if not fingerprints:
        return {}
    found = exposure.artifact_vulnerabilities(org, sorted(fingerprints))
    with_sbom = set(ComponentPackage.objects.for_org(org).filter(artifact_fingerprint__in=fingerprints)
                    .values_list("artifact_fingerprint", flat=True).distinct())
    verdicts = {}
    for fingerprint in fingerprints:
        entry = next((item for item in found.get(fingerprint) or [] if item["group_id"] == group_id), None)
        if entry is not None and entry.get("suppressed"):
            verdicts[fingerprint] = f"matched, suppressed by VEX ({entry['suppressed'].get('status', '')})"
        elif entry is not None:
            verdicts[fingerprint] = "YES: still affected"
        elif fingerprint in with_sbom:
            verdicts[fingerprint] = "no (its SBOM has no affected component)"
        else:
            verdicts[fingerprint] = "UNKNOWN: no SBOM"
    return verdicts


# --- VEX suppressions and coverage -----------------------------------------------------------------------

def _suppressed_section(doc: ReportDoc, org, suppressed: list[dict]) -> None:
    """The windows ``vulns.exposure`` moved to ``suppressed``, each with the VEX statement that suppresses
    it (``window["suppression"]``: status, justification, impact statement, its attestation)."""
    table = doc.section(
        "suppressed", "VEX suppressions",
        [("Environment", "", 12), ("Artifact", "", 12), ("Fingerprint", "mono", 16), ("Ran", "", 14),
         ("VEX status: justification", "", 26), ("Statement", "", 24)],
        "No suppression: no VEX statement declares an affected artifact here not affected.",
        intro="Artifacts that match the advisory but whose VEX statement declares them not affected (or fixed), "
              "with its justification: shown, not dropped, so the suppression itself can be reviewed.",
        controls=("CC8.1",),
    )
    attestations = set()
    for window in suppressed:
        suppression = window.get("suppression") or {}
        ran = f"{short_time(window['from'])} {_span(window)}"
        verdict = f"{suppression.get('status', '')}: {suppression.get('justification') or 'no justification given'}"
        table.add(window["environment"], window["artifact_name"], window["fingerprint"], ran, verdict,
                  suppression.get("impact_statement") or suppression.get("action_statement") or "")
        if suppression.get("attestation_id"):
            attestations.add(suppression["attestation_id"])
    _cite_attestations(doc, org, attestations, "VEX", "suppressed")
    _cite_window_snapshots(doc, org, suppressed, "suppressed")


UNCOVERED_BECAUSE = {"no_sbom": "no SBOM", "unknown_fingerprint": "no digest"}


def _coverage_section(doc: ReportDoc, org, uncovered: list[dict]) -> None:
    table = doc.section(
        "coverage", "Coverage unknown",
        [("Environment", "", 20), ("Artifact", "", 18), ("Fingerprint", "mono", 30), ("Running since", "nowrap", 14),
         ("Why", "", 10)],
        "Every running artifact here has an SBOM: coverage is complete.",
        intro="Artifacts running when the report was generated for which csm has no SBOM (\"no SBOM\"), or "
              "whose digest the agent could not resolve (\"no digest\"): csm cannot tell whether they are "
              "affected, so the answer above may be incomplete for them. Unknown is not \"not affected\".",
        controls=("11.5.2",),
    )
    latest: dict[str, int] = {}
    for item in uncovered:
        since = item.get("since") or item.get("from")
        table.add(item.get("environment", ""), ", ".join(item.get("artifact_names") or [item.get("artifact_name", "")]),
                  item.get("fingerprint") or "unknown",
                  short_time(since) if isinstance(since, datetime.datetime) else str(since or ""),
                  UNCOVERED_BECAUSE.get(item.get("reason", ""), "no SBOM"))
        latest.setdefault(item.get("environment", ""), 0)
    # each environment's latest snapshot (in the report's checkpoint) states what runs now: cite it
    for env_name in sorted(latest):
        found = (Snapshot.objects.for_org(org).filter(environment__name=env_name, leaf__index__lte=doc.journal_index)
                 .order_by("-index").values_list("index", "leaf__index", "leaf__leaf_hash").first())
        if found:
            doc.cite("snapshot", found[1], found[2], f"{env_name}#{found[0]}", part="coverage")


# --- summary ---------------------------------------------------------------------------------------------

def _summary(doc: ReportDoc, group_id: str, advisories: list[Advisory], running: list[dict], history: list[dict],
             suppressed: list[dict], uncovered: list[dict], fixes: dict | None) -> None:
    now_in = sorted({w["environment"] for w in running})
    ever_in = sorted({w["environment"] for w in running + history})
    severity = _group_severity(group_id)
    if now_in:
        text = (f"{group_id} ({severity}): affected artifacts run now in {len(now_in)} environment"
                f"{'s' if len(now_in) != 1 else ''} ({', '.join(now_in)}); ")
    elif ever_in:
        text = f"{group_id} ({severity}): no affected artifact runs now; "
    else:
        text = f"{group_id} ({severity}): no affected artifact ran in this scope; "
    text += f"{len(running) + len(history)} exposure window{'s' if len(running) + len(history) != 1 else ''}"
    text += f" in {len(ever_in)} environment{'s' if len(ever_in) != 1 else ''}."
    if suppressed:
        text += f" {len(suppressed)} window{'s' if len(suppressed) != 1 else ''} suppressed by VEX."
    if uncovered:
        text += (f" Coverage unknown for {len(uncovered)} running artifact{'s' if len(uncovered) != 1 else ''} "
                 "without an SBOM: the answer may be incomplete.")
    if any(advisory.withdrawn for advisory in advisories) and all(advisory.withdrawn for advisory in advisories):
        text += " The advisory has been withdrawn by its source."
    doc.summary_text = text
    doc.figure("Severity", severity, part="advisory")
    doc.figure("Environments exposed now", len(now_in), part="windows")
    doc.figure("Affected artifacts running", len(running), part="windows")
    doc.figure("Exposure windows", len(running) + len(history), part="windows")
    doc.figure("Past windows", len(history), part="windows")
    if fixes is not None:
        doc.figure("Environments fixed", len(fixes["fixed"]), part="fixes")
        doc.figure("Last fixed", short_time(fixes["last_fixed"]) if fixes["last_fixed"] else "n/a", part="fixes")
    doc.figure("Suppressed by VEX", len(suppressed), part="suppressed")
    doc.figure("Coverage unknown (no SBOM)", len(uncovered), part="coverage")
    if ever_in:
        seconds = _exposed_seconds(doc, running + history)
        unit, divisor = ("hours", 3600) if max(seconds.values(), default=0) >= 7200 else ("minutes", 60)
        doc.chart("exposure-per-env", "bar", f"Time exposed per environment ({unit})", ever_in,
                  [(unit.title(), [seconds.get(name, 0) // divisor for name in ever_in], PALETTE_BAD)],
                  part="windows")


def _exposed_seconds(doc: ReportDoc, windows: list[dict]) -> dict[str, int]:
    """Per environment, how long at least one affected artifact ran: the union of its windows (two affected
    artifacts running side by side are one exposure, not two)."""
    spans: dict[str, list[tuple]] = defaultdict(list)
    for window in windows:
        if window["from"] is not None:
            spans[window["environment"]].append((window["from"], window["to"] or doc.generated_at))
    seconds = {}
    for name, intervals in spans.items():
        total, current_start, current_end = 0, None, None
        for start, end in sorted(intervals):
            if current_end is None or start > current_end:
                if current_end is not None:
                    total += int((current_end - current_start).total_seconds())
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        total += int((current_end - current_start).total_seconds())
        seconds[name] = total
    return seconds
