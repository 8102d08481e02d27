"""What the vulnerability web pages show, read from the org's matches (``exposure.artifact_vulnerabilities``),
its exposure windows (``exposure.vulnerability_exposure``) and the snapshot journal's open and closed ranges
(``SnapshotEntry``). Reads only; every query is scoped to the org (advisories are global, the rest is not).

- ``vulnerability_list``: every vulnerability that affects an artifact the org runs or ran, running exposure
  first (worst severity first), then past-only exposure, then artifacts that never ran; with the counts
  stated at the top of the page (suppressed by VEX, running artifacts without an SBOM).
- ``vulnerability_detail``: one vulnerability (asked for by any alias) with its windows and timeline.
- ``artifact_section`` / ``environment_section``: the "Vulnerabilities" section of the artifact page and of
  the environment page (registered in ``csm.web`` by ``apps.py``).
- ``component_search``: where a component (purl, name or name@version) runs now and ran before.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.safestring import mark_safe

from csm.lib import charts, links
from evidence.choices import AttestationType
from evidence.models import Attestation
from snapshots.models import Environment, SnapshotEntry

from . import exposure
from .choices import LIST_ORDER, VulnSeverity
from .models import Advisory, AffectedPackage, ComponentPackage, VulnerabilityMatch

SEVERITY_ORDER = [VulnSeverity.CRITICAL, VulnSeverity.HIGH, VulnSeverity.MEDIUM, VulnSeverity.LOW,
                  VulnSeverity.UNKNOWN]
MAX_QUERY = 300  # characters of a component search


def severity_rank(severity) -> int:
    """Position in a list (critical first, unknown last: a known critical is the more urgent)."""
    return LIST_ORDER.get(severity, LIST_ORDER[VulnSeverity.UNKNOWN])


# --- running artifacts and their coverage ----------------------------------------------------------------

def _entries(org, environments=None, fingerprints=None):
    rows = SnapshotEntry.objects.for_org(org).select_related("environment")
    if environments is not None:
        rows = rows.filter(environment__in=environments)
    if fingerprints is not None:
        rows = rows.filter(fingerprint__in=fingerprints)
    return rows.only("name", "fingerprint", "running_since", "from_index", "to_index", "environment__name",
                     "environment__type").order_by("environment__name", "name", "from_index")


def running_entries(org, environments=None) -> list[SnapshotEntry]:
    """The open ranges of the journal (what runs now), in every environment or only some."""
    return list(_entries(org, environments).filter(to_index=None))


def coverage_unknown(org, environments=None) -> list[dict]:
    """Running artifacts without an SBOM (or without a fingerprint): ``exposure.coverage_unknown``, the one
    answer the API, the pages and the report share, for every environment or only some."""
    if environments is None:
        return exposure.coverage_unknown(org)
    return [item for environment in environments for item in exposure.coverage_unknown(org, environment)]


# --- the list --------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One vulnerability group on the list page."""

    group_id: str
    osv_ids: list
    aliases: list
    severity: str
    cvss_score: float | None
    summary: str
    fixed: list = field(default_factory=list)
    running: list = field(default_factory=list)  # [{environment, artifact_name, fingerprint, since}]
    past: list = field(default_factory=list)  # [{environment, artifact_name, fingerprint}]
    artifacts: set = field(default_factory=set)  # every affected (unsuppressed) fingerprint
    suppressed: int = 0

    @property
    def state(self) -> str:
        if self.running or self.past:
            return "running" if self.running else "past"
        return "never-ran" if self.artifacts else "suppressed"

    @property
    def since(self):
        return min((r["since"] for r in self.running if r["since"] is not None), default=None)

    @property
    def other_ids(self) -> list:
        return [i for i in dict.fromkeys([*self.osv_ids, *self.aliases]) if i != self.group_id]


# Running exposure first, then past-only, then artifacts that never ran, then what VEX suppresses everywhere
# (listed, never dropped).
STATE_ORDER = {"running": 0, "past": 1, "never-ran": 2, "suppressed": 3}


def vulnerability_list(org, *, environment=None, severity="", running_only=False) -> dict:
    """Every vulnerability affecting an artifact of the org, as ``Row``s in page order, and the counts the
    page states: ``suppressed`` (VEX suppressions of affected artifacts in scope) and ``coverage_unknown``
    (running artifacts without an SBOM). ``environment`` narrows to what runs or ran there."""
    environments = [environment] if environment is not None else None
    running = running_entries(org, environments)
    unknown = coverage_unknown(org, environments)
    matched = set(VulnerabilityMatch.objects.for_org(org).filter(advisory__withdrawn=None)
                  .values_list("artifact_fingerprint", flat=True).distinct())
    ran = exposure.windows(org, matched, environment) if matched else {}
    wanted = set(ran) if environment is not None else matched
    rows: dict[str, Row] = {}
    for fingerprint, groups in (exposure.artifact_vulnerabilities(org, wanted) if wanted else {}).items():
        for group in groups:
            if severity and group["severity"] != severity:
                continue
            row = rows.get(group["group_id"])
            if row is None:
                row = rows[group["group_id"]] = Row(
                    group_id=group["group_id"], osv_ids=list(group["osv_ids"]), aliases=list(group["aliases"]),
                    severity=group["severity"], cvss_score=group.get("cvss_score"), summary=group["summary"])
            if group.get("suppressed"):
                row.suppressed += 1
                continue
            row.artifacts.add(fingerprint)
            row.fixed = sorted(set(row.fixed) | set(group.get("fixed") or []))
            for window in ran.get(fingerprint, []):
                place = {"environment": window["environment"], "artifact_name": window["artifact_name"],
                         "fingerprint": fingerprint}
                if window["running"]:
                    row.running.append({**place, "since": window["from"]})
                elif place not in row.past:
                    row.past.append(place)
    shown = [row for row in rows.values()
             if row.running or row.past or (environment is None and row.artifacts) or not row.artifacts]
    for row in shown:  # an artifact running now is not also listed as having run before
        now = {(r["environment"], r["fingerprint"]) for r in row.running}
        row.past = [p for p in row.past if (p["environment"], p["fingerprint"]) not in now]
    if running_only:
        shown = [row for row in shown if row.running]
    shown.sort(key=lambda r: (STATE_ORDER[r.state], severity_rank(r.severity), -(r.cvss_score or 0), r.group_id))
    return {
        "rows": shown,
        "running_count": sum(1 for row in shown if row.running),
        "suppressed": sum(row.suppressed for row in rows.values()),
        "coverage_unknown": len(unknown),
        "running_artifacts": len({(e.environment_id, e.fingerprint or e.name) for e in running}),
        "advisories": Advisory.objects.filter(withdrawn=None).exists(),
        "matched": bool(matched),
    }


# --- one vulnerability -----------------------------------------------------------------------------------

def advisory_group(vuln_id: str) -> list[Advisory]:
    """Every advisory of the group ``vuln_id`` names (any alias, any case: ``exposure.resolve_group``), the
    group's own record first; [] when csm knows no such id."""
    group_id = exposure.resolve_group(vuln_id)
    if group_id is None:
        return []
    return sorted(Advisory.objects.filter(group_id=group_id), key=lambda a: (a.osv_id != group_id, a.osv_id))


def _ranges_text(ranges: list) -> list[str]:
    """OSV ranges as "introduced 2.0, fixed 2.11.3" lines, one per range."""
    lines = []
    for item in ranges or []:
        events = []
        for event in item.get("events") or []:
            for key in ("introduced", "fixed", "last_affected", "limit"):
                if key in event:
                    events.append(f"{key.replace('_', ' ')} {event[key]}")
        if events:
            lines.append(f"{item.get('type', '').lower() or 'range'}: " + ", ".join(events))
    return lines


def _fixed(ranges: list) -> list[str]:
    return [event["fixed"] for item in ranges or [] for event in item.get("events") or [] if "fixed" in event]


def _references(advisories: list[Advisory]) -> list[dict]:
    """Every reference of the group once, with ``url`` set only when it is http(s) (the safe-link guard)."""
    seen, refs = set(), []
    for advisory in advisories:
        for ref in advisory.references or []:
            raw = str(ref.get("url", "")) if isinstance(ref, dict) else str(ref)
            if raw in seen:
                continue
            seen.add(raw)
            refs.append({"type": (ref.get("type", "") if isinstance(ref, dict) else "").lower() or "web",
                         "text": raw, "url": links.http_url(raw)})
    return refs


def _suppressions(org, suppressed: list) -> list[dict]:
    """The suppressed windows with the VEX statement behind each (``suppression``: status, justification,
    impact statement and the attestation it came from, linked on the page)."""
    ids = {item["suppression"].get("attestation_id") for item in suppressed if item.get("suppression")}
    attestations = {a.pk: a for a in Attestation.objects.for_org(org).filter(pk__in=ids - {None})
                    .select_related("flow", "trail")}
    return [{**item, **(item.get("suppression") or {}),
             "attestation": attestations.get((item.get("suppression") or {}).get("attestation_id"))}
            for item in suppressed]


def timeline(windows: list[dict], now, title: str) -> str:
    """The exposure timeline: one lane per environment × artifact, a bar per window, now marked."""
    windows = [w for w in windows if w["from"] is not None]  # a boundary snapshot always exists; be safe
    lanes: dict[tuple, list] = {}
    for window in sorted(windows, key=lambda w: (w["environment"], w["artifact_name"], w["from"])):
        key = (window["environment"], window["artifact_name"], window["fingerprint"])
        end = window["to"]
        tip = (f"{window['environment']} · {window['artifact_name']}: from {window['from']:%Y-%m-%d %H:%M} "
               f"(snapshot #{window['from_index']}) "
               + (f"to {end:%Y-%m-%d %H:%M} (snapshot #{window['to_index']})" if end else "— running now"))
        lanes.setdefault(key, []).append((window["from"], end, tip))
    if not lanes:
        return charts.timeline_chart([], start=now, end=now, now=now, title=title,
                                     empty_message="No environment ran an affected artifact")
    start = min(w["from"] for w in windows)
    span = max(now - start, timedelta(hours=1))
    label = {key: f"{key[0]} · {key[1]}" for key in lanes}
    return charts.timeline_chart([(label[key], bars) for key, bars in lanes.items()], start=start - span / 50,
                                 end=now + span / 50, now=now, title=title)


def vulnerability_detail(org, advisories: list[Advisory], environment=None) -> dict:
    """Everything the page of one vulnerability shows: the group's records (global) and, for ``org`` only,
    its windows, suppressions and coverage gaps."""
    group_id = advisories[0].group_id
    group = exposure.group_advisories([group_id])[group_id]
    found = exposure.vulnerability_exposure(org, group_id, environment=environment)
    now = timezone.now()
    windows = [*found["running"], *found["history"]]
    affected = []
    for package in AffectedPackage.objects.filter(advisory__in=advisories).select_related("advisory"):
        affected.append({"advisory": package.advisory.osv_id, "ecosystem": package.ecosystem, "name": package.name,
                         "ranges": _ranges_text(package.ranges), "fixed": _fixed(package.ranges),
                         "versions": package.versions or []})
    lead = next((a for a in advisories if a.details), advisories[0])
    return {
        "group_id": group_id, "group": group, "details": lead.details, "advisories": advisories,
        "aliases": [a for a in group["aliases"] if a != group_id],
        "references": _references(advisories), "affected": affected,
        "running": found["running"], "history": found["history"],
        "suppressed": _suppressions(org, found.get("suppressed") or []),
        "coverage_unknown": found.get("coverage_unknown") or [],
        "chart": mark_safe(timeline(windows, now, f"Exposure timeline of {group_id}")),  # noqa: S308 - csm.lib.charts escapes every label  # nosec B308, B703
        "window_count": len(windows),
        "lanes": len({(w["environment"], w["artifact_name"], w["fingerprint"]) for w in windows}),
        "first_exposed": min((w["from"] for w in windows if w["from"]), default=None),
    }


# --- sections of the artifact and environment pages ------------------------------------------------------

def artifact_section(org, fingerprint: str) -> dict:
    """The artifact's vulnerabilities, worst first, suppressed ones kept (and marked); whether it has an
    SBOM at all (without one, its coverage is unknown); whether any vulnerability data was imported."""
    groups = exposure.artifact_vulnerabilities(org, [fingerprint]).get(fingerprint, []) if fingerprint else []
    for group in groups:
        group["other_ids"] = [i for i in group["aliases"] if i != group["group_id"]]
    return {
        "vulnerabilities": [g for g in groups if not g.get("suppressed")],
        "suppressed": [g for g in groups if g.get("suppressed")],
        "has_sbom": bool(fingerprint) and (bool(groups) or _has_sbom(org, fingerprint)),
        "advisories": Advisory.objects.filter(withdrawn=None).exists(),
    }


def _has_sbom(org, fingerprint: str) -> bool:
    """Whether csm knows what is in the artifact: indexed components, or an ``sbom`` attestation about it
    (by fingerprint, or bound to it when it was reported) — as ``exposure.coverage_unknown`` decides."""
    sboms = Attestation.objects.for_org(org).filter(type=AttestationType.SBOM)
    return (ComponentPackage.objects.for_org(org).filter(artifact_fingerprint=fingerprint).exists()
            or sboms.filter(Q(artifact_fingerprint=fingerprint) | Q(artifact__fingerprint=fingerprint)).exists())


def environment_section(org, environment: Environment) -> dict:
    """The running artifacts of an environment (a logical one: of its members) that a vulnerability
    affects, worst first, with their counts by severity, and those whose coverage is unknown."""
    environments = (list(environment.included_environments.all()) if environment.is_logical else [environment])
    running = running_entries(org, environments)
    unknown = coverage_unknown(org, environments)
    fingerprints = sorted({e.fingerprint for e in running if e.fingerprint})
    found = exposure.artifact_vulnerabilities(org, fingerprints) if fingerprints else {}
    artifacts = []
    seen = set()
    for entry in running:
        groups = sorted((g for g in found.get(entry.fingerprint, []) if not g.get("suppressed")),
                        key=lambda g: (severity_rank(g["severity"]), -(g.get("cvss_score") or 0), g["group_id"]))
        key = (entry.environment_id, entry.fingerprint)
        if not groups or key in seen:
            continue
        seen.add(key)
        counts = {s: 0 for s in SEVERITY_ORDER}
        for group in groups:
            counts[group["severity"] if group["severity"] in counts else VulnSeverity.UNKNOWN] += 1
        artifacts.append({"environment": entry.environment.name, "name": entry.name,
                          "fingerprint": entry.fingerprint, "since": entry.running_since, "groups": groups,
                          "counts": [(s, counts[s]) for s in SEVERITY_ORDER if counts[s]],
                          "worst": min(severity_rank(g["severity"]) for g in groups),
                          "suppressed": len(found.get(entry.fingerprint, [])) - len(groups)})
    artifacts.sort(key=lambda a: (a["worst"], -len(a["groups"]), a["name"]))
    return {"artifacts": artifacts, "coverage_unknown": unknown,
            "running": len({(e.environment_id, e.fingerprint or e.name) for e in running}),
            "advisories": Advisory.objects.filter(withdrawn=None).exists()}


# --- component search ------------------------------------------------------------------------------------

_PEP503 = re.compile(r"[-_.]+")


def component_packages(org, text: str):
    """The org's indexed components ``text`` asks for, as a queryset: a purl (``pkg:pypi/jinja2``, any
    version, or ``…@2.10``: ``exposure.component_packages``), or a name or ``name@version`` (the package
    name in any ecosystem, compared as that ecosystem compares names). None for text that asks for nothing."""
    text = (text or "").strip()
    if not text or len(text) > MAX_QUERY:
        return None
    if text.lower().startswith("pkg:"):
        try:
            return exposure.component_packages(org, text)[0]
        except ValueError:
            return None
    name, version = text, ""
    if "@" in text.lstrip("@"):
        name, _, version = text.rpartition("@")
    name = name.strip().lower()
    if not name:
        return None
    query = Q()
    for tail in {name, _PEP503.sub("-", name), name.replace(":", "/")}:
        query |= Q(package_key__iendswith="/" + tail)
    rows = ComponentPackage.objects.for_org(org).filter(query)
    return rows.filter(version=version.strip()) if version.strip() else rows


def component_search(org, text: str, limit: int = 200) -> dict | None:
    """Where the components ``text`` names run now and ran before: one row per component version (purl),
    with the artifacts containing it, where each runs now and where it ran, and the vulnerabilities
    matched to it. None when the query is not one (the page says how to ask)."""
    rows = component_packages(org, text)
    if rows is None:
        return None
    packages = list(rows.order_by("package_key", "version", "purl")
                    .values("id", "purl", "package_key", "version", "artifact_fingerprint")[: limit + 1])
    truncated = len(packages) > limit
    packages = packages[:limit]
    fingerprints = {p["artifact_fingerprint"] for p in packages}
    ran = exposure.windows(org, fingerprints)
    vulns: dict[int, set] = {}
    for package_id, group_id in (VulnerabilityMatch.objects.for_org(org)
                                 .filter(package_id__in=[p["id"] for p in packages], advisory__withdrawn=None)
                                 .values_list("package_id", "group_id")):
        vulns.setdefault(package_id, set()).add(group_id)
    components: dict[str, dict] = {}
    for package in packages:
        row = components.setdefault(package["purl"], {"purl": package["purl"], "version": package["version"],
                                                      "running": [], "past": [], "artifacts": set(),
                                                      "vulnerabilities": set()})
        row["vulnerabilities"] |= vulns.get(package["id"], set())
        if package["artifact_fingerprint"] in row["artifacts"]:  # the same artifact's other SBOM
            continue
        row["artifacts"].add(package["artifact_fingerprint"])
        for window in ran.get(package["artifact_fingerprint"], []):
            row["running" if window["running"] else "past"].append(window)
    rows = sorted(components.values(), key=lambda r: (not r["running"], not r["past"], r["purl"]))
    for row in rows:
        row["vulnerabilities"] = sorted(row["vulnerabilities"])
        row["artifact_count"] = len(row["artifacts"])
    return {"components": rows, "truncated": truncated,
            "running": sum(1 for r in rows if r["running"]), "limit": limit}
