"""Exposure: where and when affected artifacts ran, read from the snapshot journal (``SnapshotEntry``
ranges and ``Snapshot`` times), never copied.

Contract other modules rely on:

- ``vulnerability_exposure(org, group_id: str, environment=None) -> dict`` — ``{"running": [...],
  "history": [...], "suppressed": [...], "coverage_unknown": [...]}``; each window is
  ``{"environment", "environment_id", "artifact_name", "fingerprint", "components": [purl...],
  "from": datetime, "to": datetime | None, "from_index": int, "to_index": int | None}``.
- ``artifact_vulnerabilities(org, fingerprints) -> dict[str, list[dict]]`` — per fingerprint, every
  vulnerability group matching it: ``{"group_id", "osv_ids", "aliases", "severity", "cvss_score",
  "summary", "components": [purl...], "fixed": [...], "suppressed": dict | None, "first_matched_at"}``,
  worst first. What the artifact and environment pages, the policy rule and the Rego input use.

How a window is derived: an artifact (environment × fingerprint) runs in snapshot N of an environment
when one of its ``SnapshotEntry`` rows has ``from_index <= N < to_index`` (``to_index`` NULL: still
running). Scaling closes an entry and opens one with the same fingerprint at the same index, and two
artifact names may share a fingerprint, so the entries of one environment × fingerprint whose ranges
touch or overlap are merged into one window ``[from_index, to_index)``. ``from`` / ``to`` are the
``created_at`` of snapshots ``from_index`` / ``to_index`` (the report times the journal commits to), and
``from_journal_index`` / ``to_journal_index`` the journal leaves of those snapshots, so an auditor can
check every boundary against the org's journal.

Beyond the contract, a window also carries ``artifact_names`` (every name the fingerprint ran under in
the window), ``running`` (bool) and the journal indexes; ``vulnerability_exposure`` answers also carry
``matched_fingerprints`` (every affected fingerprint, whether it ever ran or not).

Every answer is a fixed number of queries however many windows it has (the entry read uses the
``entry_org_fp`` index).
"""

from collections import defaultdict

from django.db.models import Exists, OuterRef, Q

from evidence.choices import AttestationType
from evidence.models import Attestation
from snapshots.models import Environment, Snapshot, SnapshotEntry

from . import ecosystems, vex
from .choices import LIST_ORDER, VulnSeverity
from .models import Advisory, AdvisoryAlias, ComponentPackage, VulnerabilityMatch

# Known severities, worst first: a group takes the worst severity any of its advisories states, and is
# ``unknown`` only when none states one.
_WORST_FIRST = [VulnSeverity.CRITICAL, VulnSeverity.HIGH, VulnSeverity.MEDIUM, VulnSeverity.LOW]


# --- looking a vulnerability up -------------------------------------------------------------------------


def _spellings(identifier: str) -> list[str]:
    """The ways an id is written in the databases: ``CVE-2019-10906``, ``GHSA-462w-v97r-4m45`` (upper
    prefix, lower body), ``PYSEC-2019-217``; exact matches use the alias index, unlike ``iexact``."""
    prefix, dash, body = identifier.partition("-")
    return sorted({identifier, identifier.upper(), f"{prefix.upper()}{dash}{body.lower()}"})


def resolve_group(identifier: str) -> str | None:
    """The ``group_id`` of the vulnerability ``identifier`` names: any alias of any of its advisories
    (CVE, GHSA, PYSEC, ...; any letter case) or the group id itself. None when csm knows no such id."""
    identifier = (identifier or "").strip()
    if not identifier or len(identifier) > 200:
        return None
    spellings = _spellings(identifier)
    found = (AdvisoryAlias.objects.filter(alias__in=spellings).values_list("advisory__group_id", flat=True)
             .order_by("advisory__group_id").first())
    if found is None:
        found = (AdvisoryAlias.objects.filter(alias__iexact=identifier).values_list("advisory__group_id", flat=True)
                 .order_by("advisory__group_id").first())
    if found is None:
        found = (Advisory.objects.filter(group_id__iexact=identifier).values_list("group_id", flat=True)
                 .order_by("group_id").first())
    return found


def group_advisories(group_ids) -> dict[str, dict]:
    """Per group id, what its advisories say together (one query): ``{"group_id", "osv_ids", "aliases"
    (every id of the group, sorted), "severity" (the worst known), "cvss_score" (the highest),
    "cvss_vector", "summary", "withdrawn" (True when every advisory of the group is withdrawn)}``."""
    rows = (Advisory.objects.filter(group_id__in=set(group_ids)).order_by("group_id", "osv_id")
            .values("group_id", "osv_id", "aliases", "severity", "cvss_score", "cvss_vector", "summary", "withdrawn"))
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row["group_id"], {
            "group_id": row["group_id"], "osv_ids": [], "aliases": set(), "severities": set(), "cvss_score": None,
            "cvss_vector": "", "summary": "", "withdrawn": True})
        group["osv_ids"].append(row["osv_id"])
        group["aliases"].update([row["osv_id"], row["group_id"], *row["aliases"]])
        group["severities"].add(row["severity"])
        group["withdrawn"] = group["withdrawn"] and row["withdrawn"] is not None
        if row["cvss_score"] is not None and (group["cvss_score"] is None or row["cvss_score"] > group["cvss_score"]):
            group["cvss_score"], group["cvss_vector"] = row["cvss_score"], row["cvss_vector"]
        # The summary of the group's own record (its id is the group id) wins; else the first one stated.
        if row["summary"] and (not group["summary"] or row["osv_id"] == row["group_id"]):
            group["summary"] = row["summary"]
    for group in groups.values():
        severities = group.pop("severities")
        group["severity"] = next((s for s in _WORST_FIRST if s in severities), VulnSeverity.UNKNOWN)
        group["aliases"] = sorted(group["aliases"])
    return groups


def severity_key(group: dict) -> tuple:
    """Sort key, worst first: critical before high ... before unknown, then the higher CVSS score."""
    return (LIST_ORDER[group["severity"]], -(group["cvss_score"] or 0.0), group["group_id"])


def suppressions_for(org, fingerprints, groups: dict[str, dict]) -> dict[tuple[str, str], dict]:
    """``vex.suppressions`` for these fingerprints and groups: ``{(fingerprint, group_id): suppression}``."""
    # Until the VEX part (``vex.suppressions``) is merged no statement suppresses anything: every match
    # is shown as exposed, the safe side of the answer.
    suppressions = getattr(vex, "suppressions", None)
    if not fingerprints or not groups or suppressions is None:
        return {}
    return suppressions(org, set(fingerprints), {gid: set(group["aliases"]) for gid, group in groups.items()})


# --- windows from the snapshot journal ------------------------------------------------------------------


def _environment_id(environment) -> int | None:
    if environment is None:
        return None
    return environment.pk if isinstance(environment, Environment) else int(environment)


def windows(org, fingerprints, environment=None) -> dict[str, list[dict]]:
    """Per fingerprint, every window it ran in (oldest first), in ``environment`` (an ``Environment`` or
    its id) or in every environment of ``org``. Two queries: the entries, then the boundary snapshots."""
    fingerprints = {fp for fp in fingerprints if fp}
    if not fingerprints:
        return {}
    entries = SnapshotEntry.objects.for_org(org).filter(fingerprint__in=fingerprints)
    env_id = _environment_id(environment)
    if env_id is not None:
        entries = entries.filter(environment_id=env_id)
    rows = (entries.order_by("environment_id", "fingerprint", "from_index", "id")
            .values_list("environment_id", "environment__name", "fingerprint", "name", "from_index", "to_index"))
    merged: list[dict] = []
    for environment_id, environment_name, fingerprint, name, start, end in rows:
        last = merged[-1] if merged else None
        if (last and last["environment_id"] == environment_id and last["fingerprint"] == fingerprint
                and (last["to_index"] is None or start <= last["to_index"])):
            if last["to_index"] is not None and (end is None or end > last["to_index"]):
                last["to_index"] = end
            if name not in last["artifact_names"]:
                last["artifact_names"].append(name)
            continue
        merged.append({"environment": environment_name, "environment_id": environment_id,
                       "artifact_name": name, "artifact_names": [name], "fingerprint": fingerprint,
                       "from_index": start, "to_index": end})
    boundaries = _boundaries(org, merged)
    result: dict[str, list[dict]] = defaultdict(list)
    for window in merged:
        key = window["environment_id"]
        start = boundaries.get((key, window["from_index"]), (None, None))
        end = boundaries.get((key, window["to_index"]), (None, None))  # to_index None: no such key
        window.update({"from": start[0], "to": end[0], "from_journal_index": start[1], "to_journal_index": end[1],
                       "running": window["to_index"] is None})
        result[window["fingerprint"]].append(window)
    for found in result.values():
        found.sort(key=lambda w: (w["from"] is None, w["from"], w["environment"]))
    return dict(result)


def _boundaries(org, merged: list[dict]) -> dict[tuple[int, int], tuple]:
    """``{(environment_id, index): (created_at, journal leaf index)}`` of every boundary snapshot."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for window in merged:
        wanted[window["environment_id"]].add(window["from_index"])
        if window["to_index"] is not None:
            wanted[window["environment_id"]].add(window["to_index"])
    if not wanted:
        return {}
    condition = Q()
    for environment_id, indexes in wanted.items():
        condition |= Q(environment_id=environment_id, index__in=sorted(indexes))
    rows = Snapshot.objects.for_org(org).filter(condition).values_list("environment_id", "index", "created_at",
                                                                        "leaf__index")
    return {(environment_id, index): (created_at, leaf) for environment_id, index, created_at, leaf in rows}


def coverage_unknown(org, environment=None) -> list[dict]:
    """Artifacts running now (in ``environment`` or every environment of ``org``) whose vulnerabilities
    csm cannot know: an unknown fingerprint, or no SBOM for it (no indexed component and no ``sbom``
    attestation, whether addressed by fingerprint or bound to the artifact later). One query.

    Each: ``{"environment", "environment_id", "artifact_name", "artifact_names", "fingerprint",
    "reason" ("unknown_fingerprint" | "no_sbom"), "since" (running since), "from_index"}``."""
    packages = ComponentPackage.objects.filter(org=org, artifact_fingerprint=OuterRef("fingerprint"))
    sboms = Attestation.objects.filter(org=org, type=AttestationType.SBOM)
    running = SnapshotEntry.objects.for_org(org).filter(to_index__isnull=True).filter(
        Q(fingerprint="") | (~Exists(packages)
                             & ~Exists(sboms.filter(artifact_fingerprint=OuterRef("fingerprint")))
                             & ~Exists(sboms.filter(artifact__fingerprint=OuterRef("fingerprint")))))
    env_id = _environment_id(environment)
    if env_id is not None:
        running = running.filter(environment_id=env_id)
    rows = (running.order_by("environment__name", "fingerprint", "name", "from_index")
            .values_list("environment_id", "environment__name", "fingerprint", "name", "from_index", "running_since"))
    found: dict[tuple, dict] = {}
    for environment_id, environment_name, fingerprint, name, start, since in rows:
        key = (environment_id, fingerprint or f"name:{name}")
        item = found.get(key)
        if item is None:
            found[key] = {"environment": environment_name, "environment_id": environment_id, "artifact_name": name,
                          "artifact_names": [name], "fingerprint": fingerprint,
                          "reason": "no_sbom" if fingerprint else "unknown_fingerprint",
                          "since": since, "from_index": start}
            continue
        if name not in item["artifact_names"]:
            item["artifact_names"].append(name)
        item["since"] = min(item["since"], since)
        item["from_index"] = min(item["from_index"], start)
    return list(found.values())


# --- answers -------------------------------------------------------------------------------------------


def vulnerability_exposure(org, group_id: str, environment=None) -> dict:
    """Where the vulnerability group ``group_id`` runs now and ran before, in ``org`` (optionally one
    environment): ``running`` and ``history`` windows of every affected artifact, ``suppressed`` (the
    windows of artifacts a VEX statement declares not affected / fixed, each with ``suppression`` and
    ``running``; shown, never dropped), ``coverage_unknown`` (running artifacts without an SBOM: the
    answer never looks cleaner than it is) and ``matched_fingerprints``."""
    matches = (VulnerabilityMatch.objects.for_org(org).filter(group_id=group_id, advisory__withdrawn__isnull=True)
               .values_list("artifact_fingerprint", "package__purl").order_by("package__purl"))
    components: dict[str, list[str]] = defaultdict(list)
    for fingerprint, purl in matches:
        if purl not in components[fingerprint]:
            components[fingerprint].append(purl)
    groups = group_advisories([group_id]) if components else {}
    suppressed_by = suppressions_for(org, components, groups)
    answer = {"running": [], "history": [], "suppressed": [], "matched_fingerprints": sorted(components)}
    for fingerprint, found in windows(org, components, environment).items():
        suppression = suppressed_by.get((fingerprint, group_id))
        for window in found:
            window["components"] = components[fingerprint]
            if suppression is not None:
                answer["suppressed"].append({**window, "suppression": suppression})
            else:
                answer["running" if window["running"] else "history"].append(window)
    for key in ("running", "history", "suppressed"):
        answer[key].sort(key=lambda w: (w["from"] is None, w["from"], w["environment"], w["fingerprint"]))
    answer["coverage_unknown"] = coverage_unknown(org, environment)
    return answer


def artifact_vulnerabilities(org, fingerprints) -> dict[str, list[dict]]:
    """Per fingerprint, every vulnerability group matching it, worst first (see the module contract).
    A fingerprint without matches has no key. Three queries (matches, advisories, VEX)."""
    fingerprints = {fp for fp in fingerprints if fp}
    if not fingerprints:
        return {}
    rows = (VulnerabilityMatch.objects.for_org(org)
            .filter(artifact_fingerprint__in=fingerprints, advisory__withdrawn__isnull=True)
            .order_by("package__purl", "id")
            .values_list("artifact_fingerprint", "group_id", "package__purl", "fixed", "matched_at"))
    found: dict[tuple[str, str], dict] = {}
    for fingerprint, group_id, purl, fixed, matched_at in rows:
        item = found.setdefault((fingerprint, group_id),
                                {"components": [], "fixed": [], "first_matched_at": matched_at})
        if purl not in item["components"]:
            item["components"].append(purl)
        item["fixed"].extend(version for version in fixed or [] if version not in item["fixed"])
        item["first_matched_at"] = min(item["first_matched_at"], matched_at)
    groups = group_advisories({group_id for _, group_id in found})
    suppressed_by = suppressions_for(org, {fp for fp, _ in found}, groups)
    result: dict[str, list[dict]] = defaultdict(list)
    for (fingerprint, group_id), item in found.items():
        group = groups.get(group_id)
        if group is None:  # the advisories went away between the two reads
            continue
        result[fingerprint].append({
            "group_id": group_id, "osv_ids": group["osv_ids"], "aliases": group["aliases"],
            "severity": group["severity"], "cvss_score": group["cvss_score"], "summary": group["summary"],
            **item, "suppressed": suppressed_by.get((fingerprint, group_id)),
        })
    for items in result.values():
        items.sort(key=severity_key)
    return dict(result)


def component_packages(org, purl: str):
    """The org's indexed components a purl names (``pkg:pypi/jinja2`` any version; ``…@2.10`` that
    version), as a queryset, and the parsed package. ``ValueError`` when ``purl`` is not a package URL."""
    package = ecosystems.from_purl(purl)
    if package is None:
        raise ValueError("not a package URL of a supported ecosystem (pkg:TYPE/NAMESPACE/NAME@VERSION)")
    rows = ComponentPackage.objects.for_org(org).filter(package_key=package.key)
    if package.version:
        rows = rows.filter(version=package.version)
    return rows, package
