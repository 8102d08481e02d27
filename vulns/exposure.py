"""Exposure: where and when affected artifacts ran, read from the snapshot journal (``SnapshotEntry``
ranges and ``Snapshot`` times), never copied.

Contract other modules rely on:

- ``vulnerability_exposure(org, group_id: str, environment=None) -> dict`` — ``{"running": [...],
  "history": [...], "suppressed": [...], "coverage_unknown": [...]}``; each window is
  ``{"environment", "environment_id", "artifact_name", "fingerprint", "components": [purl...],
  "from": datetime, "to": datetime | None, "from_index": int, "to_index": int | None}``.
- ``artifact_vulnerabilities(org, fingerprints) -> dict[str, list[dict]]`` — per fingerprint, every
  vulnerability group matching it: ``{"group_id", "osv_ids", "aliases", "severity", "cvss_score",
  "summary", "components": [purl...], "fixed": [...], "suppressed": dict | None, "first_matched_at"}``
  (and ``cvss_vector``, ``published``, ``modified``), worst first. What the artifact and environment
  pages, the policy rule and the Rego input use.

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
    "cvss_vector", "summary", "withdrawn" (True when every advisory of the group is withdrawn),
    "published" (the earliest), "modified" (the latest)}``."""
    rows = (Advisory.objects.filter(group_id__in=set(group_ids)).order_by("group_id", "osv_id")
            .values("group_id", "osv_id", "aliases", "severity", "cvss_score", "cvss_vector", "summary", "withdrawn",
                    "published", "modified"))
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row["group_id"], {
            "group_id": row["group_id"], "osv_ids": [], "aliases": set(), "severities": set(), "cvss_score": None,
            "cvss_vector": "", "summary": "", "withdrawn": True, "published": None, "modified": None})
        group["osv_ids"].append(row["osv_id"])
        group["aliases"].update([row["osv_id"], row["group_id"], *row["aliases"]])
        group["severities"].add(row["severity"])
        group["withdrawn"] = group["withdrawn"] and row["withdrawn"] is not None
        if row["published"] and (group["published"] is None or row["published"] < group["published"]):
            group["published"] = row["published"]
        if group["modified"] is None or row["modified"] > group["modified"]:
            group["modified"] = row["modified"]
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
    if not fingerprints or not groups:
        return {}
    return vex.suppressions(org, set(fingerprints), {gid: set(group["aliases"]) for gid, group in groups.items()})


# --- windows from the snapshot journal ------------------------------------------------------------------


def _environment_ids(environment) -> list[int] | None:
    """The environments an answer is about: None for every environment of the org; a logical
    environment stands for the environments it includes (it receives no reports itself)."""
    if environment is None:
        return None
    if not isinstance(environment, Environment):
        return [int(environment)]
    if environment.is_logical:
        return list(environment.included_environments.values_list("pk", flat=True))
    return [environment.pk]


def windows(org, fingerprints, environment=None) -> dict[str, list[dict]]:
    """Per fingerprint, every window it ran in (oldest first), in ``environment`` (an ``Environment`` —
    a logical one stands for its members — or an id) or in every environment of ``org``. Two queries:
    the entries, then the boundary snapshots (three for a logical environment)."""
    fingerprints = {fp for fp in fingerprints if fp}
    if not fingerprints:
        return {}
    entries = SnapshotEntry.objects.for_org(org).filter(fingerprint__in=fingerprints)
    env_ids = _environment_ids(environment)
    if env_ids is not None:
        entries = entries.filter(environment_id__in=env_ids)
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
    env_ids = _environment_ids(environment)
    # By environment, so the open entries are read from the (environment, to_index) index, not by
    # scanning every entry the org ever had.
    running = running.filter(environment_id__in=env_ids if env_ids is not None
                             else Environment.objects.for_org(org).values("pk"))
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
            "cvss_vector": group["cvss_vector"], "published": group["published"], "modified": group["modified"],
            **item, "suppressed": suppressed_by.get((fingerprint, group_id)),
        })
    for items in result.values():
        items.sort(key=severity_key)
    return dict(result)


def vulnerability_detail(group_id: str) -> dict | None:
    """What the vulnerability databases say about a group (global data, two queries): the group's
    summary (``group_advisories``) with ``details``, ``references`` (of every record, deduplicated),
    ``advisories`` (each record: id, summary, severity, CVSS, published / modified / withdrawn, source)
    and ``affected`` (each ``affected[]`` entry: record, ecosystem, name, purl type, ranges, versions).
    The group's own record (its id is the group id) comes first; None when no advisory has this group."""
    records = sorted(Advisory.objects.filter(group_id=group_id).prefetch_related("affected"),
                     key=lambda a: (a.osv_id != group_id, a.osv_id))
    if not records:
        return None
    detail = group_advisories([group_id])[group_id]
    detail["details"] = next((a.details for a in records if a.details), "")
    references, seen = [], set()
    for item in records:
        for reference in item.references or []:
            url = reference.get("url") if isinstance(reference, dict) else None
            if url and url not in seen:
                seen.add(url)
                references.append({"type": reference.get("type", ""), "url": url})
    detail["references"] = references
    detail["advisories"] = [{"osv_id": a.osv_id, "summary": a.summary, "severity": a.severity,
                             "cvss_score": a.cvss_score, "cvss_vector": a.cvss_vector, "published": a.published,
                             "modified": a.modified, "withdrawn": a.withdrawn, "source": a.source} for a in records]
    detail["affected"] = [{"osv_id": a.osv_id, "ecosystem": p.ecosystem, "name": p.name, "purl_type": p.purl_type,
                           "package_key": p.package_key, "ranges": p.ranges, "versions": p.versions}
                          for a in records for p in a.affected.all()]
    return detail


def vulnerability_list(org, environment=None, severities=None, running: bool | None = None) -> list[dict]:
    """Every vulnerability group affecting an artifact of ``org``, running exposure first, then worst
    first (severity, CVSS). Each is ``group_advisories``' summary with ``affected_artifacts`` (matched
    fingerprints), ``running_artifacts`` / ``running_environments`` (environment × artifact windows
    open now, VEX-suppressed ones excepted), ``suppressed_artifacts`` (fingerprints a VEX statement
    suppresses) and ``ever_ran``.

    ``environment``: only groups whose artifacts run or ran there (counts are then for that environment);
    ``severities``: a set of severities; ``running``: True only groups running now (unsuppressed), False
    only the others. Five queries whatever the size."""
    env_ids = _environment_ids(environment)
    pairs = set(VulnerabilityMatch.objects.for_org(org).filter(advisory__withdrawn__isnull=True)
                .values_list("group_id", "artifact_fingerprint").distinct())
    if not pairs:
        return []
    matched = VulnerabilityMatch.objects.for_org(org).values("artifact_fingerprint")
    entries = SnapshotEntry.objects.for_org(org).filter(fingerprint__in=matched)
    if env_ids is not None:
        entries = entries.filter(environment_id__in=env_ids)
    running_now: dict[str, set[str]] = defaultdict(set)
    for fingerprint, name in (entries.filter(to_index__isnull=True).values_list("fingerprint", "environment__name")
                              .distinct()):
        running_now[fingerprint].add(name)
    ran = set(entries.values_list("fingerprint", flat=True).distinct())
    groups = group_advisories({group_id for group_id, _ in pairs})
    suppressed_by = suppressions_for(org, {fp for _, fp in pairs}, groups)
    by_group: dict[str, set[str]] = defaultdict(set)
    for group_id, fingerprint in pairs:
        by_group[group_id].add(fingerprint)
    result = []
    for group_id, fingerprints in by_group.items():
        group = groups.get(group_id)
        if group is None or (severities and group["severity"] not in severities):
            continue
        if env_ids is not None and not fingerprints & ran:
            continue
        suppressed = {fp for fp in fingerprints if (fp, group_id) in suppressed_by}
        exposed = [(fp, env) for fp in sorted(fingerprints - suppressed) for env in sorted(running_now.get(fp, ()))]
        if running is not None and running != bool(exposed):
            continue
        result.append({**group, "affected_artifacts": len(fingerprints), "running_artifacts": len(exposed),
                       "running_environments": sorted({env for _, env in exposed}),
                       "suppressed_artifacts": len(suppressed), "ever_ran": bool(fingerprints & ran)})
    result.sort(key=lambda g: (not g["running_artifacts"], *severity_key(g)))
    return result


def component_artifacts(org, purl: str, environment=None) -> dict:
    """Where the component a purl names (``pkg:pypi/jinja2`` any version, ``…@2.10`` that version) runs
    now and ran before in ``org``: ``{"package_key", "name", "version", "artifacts": [...],
    "never_ran": int}``. One item per artifact that carries it and ran (running ones first): ``{"fingerprint",
    "artifact_names", "components" (its matching purls), "running": [windows], "history": [windows]}``;
    ``never_ran`` counts the artifacts with the component that never ran (in ``environment``). Three
    queries; ``vulnerabilities_of_component`` adds the known vulnerabilities of a page of them.
    ``ValueError`` when ``purl`` is not a package URL csm can read."""
    packages, package = component_packages(org, purl)
    components: dict[str, list[str]] = defaultdict(list)
    for fingerprint, found in packages.order_by("purl").values_list("artifact_fingerprint", "purl"):
        if found not in components[fingerprint]:
            components[fingerprint].append(found)
    ran = windows(org, components, environment)
    artifacts = []
    for fingerprint, found in ran.items():
        names = []
        for window in found:
            window["components"] = components[fingerprint]
            names.extend(n for n in window["artifact_names"] if n not in names)
        artifacts.append({"fingerprint": fingerprint, "artifact_names": names, "components": components[fingerprint],
                          "running": [w for w in found if w["running"]],
                          "history": [w for w in found if not w["running"]]})
    # Running ones first, then the most recently started.
    artifacts.sort(key=lambda a: (not a["running"], -max(w["from"].timestamp() if w["from"] else 0
                                                           for w in a["running"] + a["history"]), a["fingerprint"]))
    return {"package_key": package.key, "name": package.name, "version": package.version, "artifacts": artifacts,
            "never_ran": len(set(components) - set(ran))}


def vulnerabilities_of_component(org, artifacts: list[dict]) -> None:
    """Add ``vulnerabilities`` to each item of ``component_artifacts``: the groups matching one of the
    artifact's components named by the search (``artifact_vulnerabilities``, worst first)."""
    found = artifact_vulnerabilities(org, [a["fingerprint"] for a in artifacts])
    for artifact in artifacts:
        wanted = set(artifact["components"])
        artifact["vulnerabilities"] = [g for g in found.get(artifact["fingerprint"], [])
                                       if wanted.intersection(g["components"])]


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
