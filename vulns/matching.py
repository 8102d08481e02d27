"""Matching (owned by the matching helper): SBOM components → ``ComponentPackage`` (purl parsed with
packageurl-python), and ``VulnerabilityMatch`` rows from each ecosystem's own version semantics (univers).

Contract other modules rely on:

- ``index_sbom(attestation_id: int) -> list[int]`` — index the SBOM's components and match them against
  every known advisory; returns the new match ids (and calls ``hooks.run_matches_added(..., "sbom")``).
- ``rematch_advisories(advisory_ids: list[int]) -> dict[int, list[int]]`` — re-match only the components
  these advisories name (by ``package_key``); removes matches of withdrawn advisories or that no longer
  match; returns ``{org_id: [new match ids]}`` (and calls ``hooks.run_matches_added(..., "advisory")``).

How a version is judged (``affects``): an OSV ``affected[]`` entry affects a version when the version is
one of its explicit ``versions[]`` or lies inside one of its ``ranges``. A range's events are sorted by
the ecosystem's version order (``introduced: "0"`` first) and walked into intervals: ``introduced`` opens
one, ``fixed`` closes it before that version, ``last_affected`` closes it at (including) that version;
``limit`` events bound the whole range (a version at or above every limit is outside). ``ECOSYSTEM``
ranges compare with the ecosystem's own version class, ``SEMVER`` ranges with semantic versioning; all
comparisons are univers' (``VersionConstraint`` over its ``Version`` classes). ``GIT`` ranges name
commits, which a purl cannot: they are skipped. A version univers cannot parse (the component's or an
event's) decides nothing: that pair is not matched, counted in ``MatchStats.unparsed`` and logged.

Writes take a PostgreSQL advisory lock (one matcher writes at a time), so an SBOM indexed while an import
re-matches cannot insert the same match twice, and "new match ids" are exactly the rows this call
created. Both entry points work in chunks of ``CHUNK`` components (one transaction each), so memory stays
bounded however large the SBOM or the set of components an advisory names.
"""

import functools
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from packageurl import PackageURL
from univers.version_constraint import VersionConstraint
from univers.version_range import RANGE_CLASS_BY_SCHEMES
from univers.versions import GolangVersion, InvalidVersion, SemverVersion

from evidence.choices import AttestationType
from evidence.models import Attestation, SbomComponent

from . import ecosystems, hooks
from .models import Advisory, AffectedPackage, ComponentPackage, VulnerabilityMatch

log = logging.getLogger(__name__)

CHUNK = 2000  # components per query batch and per transaction
ADVISORY_BATCH = 1000  # advisories re-matched together (an initial import names every advisory)
_MATCH_LOCK = (0x637376, 1)  # ("csv": vulns) next to snapshots' 0x63736E and policies' 0x63736D

# purl type → univers version class for ``ECOSYSTEM`` ranges. Dart's pub versions are semantic versions
# (univers has no pub scheme); every other type is univers' own scheme of the same name.
ECOSYSTEM_VERSION = {purl_type: RANGE_CLASS_BY_SCHEMES[purl_type].version_class
                     for purl_type in ecosystems.PURL_TO_OSV if purl_type in RANGE_CLASS_BY_SCHEMES}
ECOSYSTEM_VERSION["pub"] = SemverVersion


def _semver_class(purl_type: str):
    """``SEMVER`` ranges: semantic versioning; Go's versions carry a leading ``v`` that semver lacks."""
    return GolangVersion if purl_type == "golang" else SemverVersion


@functools.lru_cache(maxsize=100_000)
def parse_version(version_class, text: str):
    """The univers version, or None when ``text`` is not a version of that class."""
    try:
        return version_class(text)
    except (InvalidVersion, ValueError, TypeError, AttributeError):
        return None


@dataclass
class MatchStats:
    """What one matching run saw: components looked at, (component, affected entry) pairs judged,
    matches found, pairs judged nothing because a version could not be parsed, GIT ranges skipped."""

    packages: int = 0
    pairs: int = 0
    matched: int = 0
    unparsed: int = 0
    git_ranges: int = 0
    unparsed_examples: list = field(default_factory=list)

    def unparsed_version(self, purl_type: str, text: str) -> None:
        self.unparsed += 1
        if len(self.unparsed_examples) < 5:
            self.unparsed_examples.append(f"{purl_type}:{text}")


class Unparsable(Exception):
    """A version of the range or the component that univers cannot read: the pair decides nothing."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


@functools.lru_cache(maxsize=50_000)
def _intervals(version_class, events_key: tuple):
    """The affected intervals of one range: ``[(lower constraint or None, upper constraint or None,
    fixed version text or None)]`` and its limit constraints. ``events_key``: ``((kind, text), ...)``."""
    parsed = []
    for kind, text in events_key:
        if kind == "introduced" and text == "0":
            parsed.append((0, None, kind, text))
            continue
        if kind == "limit" and text == "*":  # no limit
            continue
        version = parse_version(version_class, text)
        if version is None:
            raise Unparsable(text)
        parsed.append((1, version, kind, text))
    limits = [VersionConstraint(comparator="<", version=v) for _, v, kind, _ in parsed if kind == "limit"]
    ordered = sorted((p for p in parsed if p[2] != "limit"), key=functools.cmp_to_key(_event_order))
    intervals, lower, open_ = [], None, False
    for _, version, kind, text in ordered:
        if kind == "introduced":
            if not open_:
                lower = None if version is None else VersionConstraint(comparator=">=", version=version)
                open_ = True
        elif kind in ("fixed", "last_affected") and open_:
            comparator = "<" if kind == "fixed" else "<="
            intervals.append((lower, VersionConstraint(comparator=comparator, version=version),
                              text if kind == "fixed" else None))
            open_ = False
    if open_:
        intervals.append((lower, None, None))
    return tuple(intervals), tuple(limits)


def _event_order(a, b):
    """``introduced: "0"`` first, then by version (univers order); at one version, introduced first."""
    if a[0] != b[0]:
        return a[0] - b[0]
    if a[1] is None or a[1] == b[1]:
        return (a[2] != "introduced") - (b[2] != "introduced")
    return -1 if a[1] < b[1] else 1


def affects(purl_type: str, version_text: str, ranges, versions, stats: MatchStats | None = None):
    """``(affected, fixed versions)`` for one OSV ``affected[]`` entry (its ``ranges`` and explicit
    ``versions``) and a component version. ``fixed``: the fix of each interval the version lies in
    (empty when no fixed release exists for that stream). A version univers cannot read: ``(False, [])``
    and counted in ``stats``."""
    return _judge(purl_type, version_text, compile_ranges(ranges), versions,
                  stats if stats is not None else MatchStats())


def compile_ranges(ranges) -> tuple:
    """OSV ``ranges`` as ``((type, events key), ...)``: what ``_judge`` reads, hashable, made once per row."""
    return tuple((r.get("type"), _events_key(r.get("events"))) for r in ranges or () if isinstance(r, dict))


def _judge(purl_type: str, version_text: str, ranges: tuple, versions, stats: MatchStats):
    eco_class = ECOSYSTEM_VERSION.get(purl_type)
    if eco_class is None or not version_text:
        return False, []
    component = parse_version(eco_class, version_text)
    affected = False
    if versions:
        if version_text in versions:
            affected = True
        elif component is not None:
            affected = any(parse_version(eco_class, str(v)) == component for v in versions)
    fixed = []
    for kind, events in ranges:
        if kind == "GIT":
            stats.git_ranges += 1
            continue
        version_class = _semver_class(purl_type) if kind == "SEMVER" else eco_class
        version = component if version_class is eco_class else parse_version(version_class, version_text)
        if version is None:
            stats.unparsed_version(purl_type, version_text)
            continue
        try:
            intervals, limits = _intervals(version_class, events)
        except Unparsable as exc:
            stats.unparsed_version(purl_type, exc.text)
            continue
        if limits and not any(version in limit for limit in limits):
            continue
        for lower, upper, fix in intervals:
            if (lower is None or version in lower) and (upper is None or version in upper):
                affected = True
                if fix:
                    fixed.append(fix)
    if component is None and not affected and not ranges:
        stats.unparsed_version(purl_type, version_text)
    return affected, _sorted_versions(eco_class, fixed) if len(fixed) > 1 else fixed


def _events_key(events) -> tuple:
    out = []
    for event in events or ():
        if isinstance(event, dict):
            for kind in ("introduced", "fixed", "last_affected", "limit"):
                if isinstance(event.get(kind), str):
                    out.append((kind, event[kind]))
    return tuple(out)


def _sorted_versions(version_class, texts) -> list[str]:
    """Distinct version texts in the ecosystem's order (texts univers cannot read: by text)."""
    def compare(a, b):
        va, vb = parse_version(version_class, a), parse_version(version_class, b)
        if va is None or vb is None:
            return (a > b) - (a < b)
        return 0 if va == vb else (-1 if va < vb else 1)

    return sorted(set(texts), key=functools.cmp_to_key(compare))


# ---------------------------------------------------------------------------------------------- writes

def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", list(_MATCH_LOCK))


def _matched_as(purl: str, package: ecosystems.Package) -> tuple[str, str]:
    """The package key and version a component is matched by. Debian and Alpine advisories name the
    *source* package (``openssl``), SBOMs the binary one (``libssl3``) with its source in the ``upstream``
    qualifier (``upstream=openssl`` or, when the source version differs, ``upstream=glibc@2.36-9``): such a
    component is matched as its source package. Debian's ``epoch`` qualifier is put back in front of the
    version (``?epoch=1`` → ``1:…``)."""
    key, version = package.key, package.version
    if package.purl_type not in ("deb", "apk"):
        return key, version
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError:
        return key, version
    qualifiers = parsed.qualifiers or {}
    upstream = str(qualifiers.get("upstream") or "").strip()
    if upstream:
        name, _, source_version = upstream.partition("@")
        source = ecosystems.from_purl(PackageURL(type=parsed.type, namespace=parsed.namespace, name=name.strip(),
                                                 version=source_version.strip() or version).to_string())
        if source is not None:
            key, version = source.key, source.version
    epoch = str(qualifiers.get("epoch") or "")
    if package.purl_type == "deb" and version and ":" not in version and epoch.isdigit() and epoch != "0":
        version = f"{epoch}:{version}"
    return key, version


def _fingerprint(attestation: Attestation) -> str:
    if attestation.artifact_id:
        return attestation.artifact.fingerprint
    return attestation.artifact_fingerprint or ""


def index_sbom(attestation_id: int) -> list[int]:
    """Index an ``sbom`` attestation's components (one ``ComponentPackage`` each whose purl names a
    package of a known ecosystem) and match them against every advisory that is not withdrawn. Idempotent:
    a second run creates nothing. An attestation that names no artifact yet (recorded before it by
    template name and commit) is left alone: packages are append-only and carry the artifact's
    fingerprint, so it is indexed when its artifact is reported and binds it (``sboms_waiting_for``, from
    ``hooks.on_artifact_saved``)."""
    attestation = (Attestation.objects.select_related("artifact").filter(pk=attestation_id)
                   .only("org_id", "type", "artifact_fingerprint", "artifact__fingerprint").first())
    if attestation is None or attestation.type != AttestationType.SBOM:
        return []
    fingerprint = _fingerprint(attestation)
    if not fingerprint:
        log.info("sbom attestation %s names no artifact yet: indexed when its artifact is reported", attestation_id)
        return []
    stats = MatchStats()
    new_ids: list[int] = []
    last_id = 0
    while True:
        with transaction.atomic():
            _lock()
            components = list(SbomComponent.objects.filter(attestation_id=attestation_id, pk__gt=last_id)
                              .exclude(purl="").order_by("pk").values("pk", "purl")[:CHUNK])
            if not components:
                break
            last_id = components[-1]["pk"]
            packages = _index_components(attestation, fingerprint, components)
            created = _match_packages(packages, stats)
            new_ids.extend(created)
            hooks.run_matches_added(attestation.org_id, created, "sbom")
    _report(f"sbom attestation {attestation_id}", stats)
    return new_ids


def _index_components(attestation: Attestation, fingerprint: str, components: list[dict]) -> list[ComponentPackage]:
    """The chunk's ``ComponentPackage`` rows, created where missing (a re-run finds them)."""
    ids = [c["pk"] for c in components]
    existing = {p.component_id: p for p in ComponentPackage.objects.filter(component_id__in=ids)}
    new = []
    for component in components:
        if component["pk"] in existing:
            continue
        package = ecosystems.from_purl(component["purl"])
        if package is None:
            continue
        key, version = _matched_as(component["purl"], package)
        new.append(ComponentPackage(
            org_id=attestation.org_id, component_id=component["pk"], attestation_id=attestation.pk,
            artifact_fingerprint=fingerprint, purl=component["purl"][:1000], purl_type=package.purl_type,
            package_key=key[:600], version=version[:200], distro=package.release[:100]))
    ComponentPackage.objects.bulk_create(new, batch_size=1000)
    return [*existing.values(), *new]


def _affected_by_key(keys, advisory_ids=None) -> dict[str, list[dict]]:
    """Affected entries of advisories not withdrawn, by package key (batched, one query per 1000 keys)."""
    out: dict[str, list[dict]] = defaultdict(list)
    keys = sorted(keys)
    for start in range(0, len(keys), 1000):
        rows = AffectedPackage.objects.filter(package_key__in=keys[start:start + 1000],
                                              advisory__withdrawn__isnull=True)
        if advisory_ids is not None:
            rows = rows.filter(advisory_id__in=advisory_ids)
        for row in rows.values("advisory_id", "advisory__group_id", "ecosystem", "name", "package_key",
                               "purl_type", "ranges", "versions").iterator(chunk_size=2000):
            row["release"] = _release_of(row["ecosystem"], row["name"])
            row["ranges"] = compile_ranges(row["ranges"])
            out[row["package_key"]].append(row)
    return out


@functools.lru_cache(maxsize=4096)
def _release_of(ecosystem: str, name: str) -> str:
    package = ecosystems.from_osv(ecosystem, name)
    return package.release if package else ""


def _desired(packages, affected_by_key, stats: MatchStats) -> dict[tuple[int, int], tuple[list, str, object]]:
    """``{(advisory id, package id): (fixed, group id, package)}`` for every pair that matches."""
    desired: dict[tuple[int, int], tuple[list, str, object]] = {}
    for package in packages:
        stats.packages += 1
        for row in affected_by_key.get(package.package_key, ()):
            if not ecosystems.same_release(row["release"], package.distro):
                continue
            stats.pairs += 1
            hit, fixed = _judge(package.purl_type, package.version, row["ranges"], row["versions"], stats)
            if not hit:
                continue
            pair = (row["advisory_id"], package.pk)
            if pair in desired:  # one advisory naming the package in several entries: one match
                fixed = sorted(set(desired[pair][0]) | set(fixed))
            desired[pair] = (fixed, row["advisory__group_id"], package)
    stats.matched += len(desired)
    return desired


def _insert(desired: dict, skip: set) -> list[VulnerabilityMatch]:
    now = timezone.now()
    rows = [VulnerabilityMatch(org_id=package.org_id, advisory_id=advisory_id, package_id=package_id,
                               artifact_fingerprint=package.artifact_fingerprint, group_id=group_id, fixed=fixed,
                               matched_at=now)
            for (advisory_id, package_id), (fixed, group_id, package) in desired.items()
            if (advisory_id, package_id) not in skip]
    return VulnerabilityMatch.objects.bulk_create(rows, batch_size=1000)


def _match_packages(packages: list[ComponentPackage], stats: MatchStats) -> list[int]:
    """Match one chunk of packages against every live advisory; create the missing matches."""
    affected = _affected_by_key({p.package_key for p in packages})
    desired = _desired(packages, affected, stats)
    existing = set(VulnerabilityMatch.objects.filter(package_id__in=[p.pk for p in packages])
                   .values_list("advisory_id", "package_id"))
    return [m.pk for m in _insert(desired, existing)]


def rematch_advisories(advisory_ids: list[int]) -> dict[int, list[int]]:
    """Re-match the components named by these advisories (created, changed or withdrawn), in every org:
    matches of withdrawn advisories are removed, matches that no longer hold are removed, ``fixed`` is
    brought up to date, new matches are created and announced (``matches_added``, cause ``advisory``).
    A large import is taken ``ADVISORY_BATCH`` advisories at a time (bounded queries and memory)."""
    advisory_ids = sorted(set(advisory_ids))
    stats = MatchStats()
    result: dict[int, list[int]] = defaultdict(list)
    removed = withdrawn = 0
    for start in range(0, len(advisory_ids), ADVISORY_BATCH):
        batch_removed, batch_withdrawn = _rematch_batch(advisory_ids[start:start + ADVISORY_BATCH], stats, result)
        removed += batch_removed
        withdrawn += batch_withdrawn
    if advisory_ids:
        _report(f"{len(advisory_ids)} advisories ({withdrawn} withdrawn, {removed} matches removed)", stats)
    return dict(result)


def _rematch_batch(advisory_ids: list[int], stats: MatchStats, result: dict) -> tuple[int, int]:
    group = Advisory.objects.filter(pk=OuterRef("advisory_id")).values("group_id")[:1]
    withdrawn = set(Advisory.objects.filter(pk__in=advisory_ids, withdrawn__isnull=False).values_list("pk", flat=True))
    live = [pk for pk in advisory_ids if pk not in withdrawn]
    with transaction.atomic():
        _lock()
        removed, _ = VulnerabilityMatch.objects.filter(advisory_id__in=withdrawn).delete()
        affected = _affected_by_key(set(AffectedPackage.objects.filter(advisory_id__in=live)
                                        .values_list("package_key", flat=True).distinct()), live)
        # matches of these advisories on packages none of them names any more (the record changed names)
        removed += VulnerabilityMatch.objects.filter(advisory_id__in=live).exclude(
            package__package_key__in=list(affected)).delete()[0]
        # an advisory that gained an alias may have joined another group: its matches follow it
        VulnerabilityMatch.objects.filter(advisory_id__in=live).exclude(group_id=Subquery(group)).update(
            group_id=Subquery(group))
    keys = sorted(affected)
    last_id = 0
    while keys:
        with transaction.atomic():
            _lock()
            packages = list(ComponentPackage.objects.filter(package_key__in=keys, pk__gt=last_id)
                            .exclude(artifact_fingerprint="").order_by("pk")[:CHUNK])
            if not packages:
                break
            last_id = packages[-1].pk
            created, gone = _rematch_chunk(packages, affected, live, stats)
            removed += gone
            by_org: dict[int, list[int]] = defaultdict(list)
            for match in created:
                by_org[match.org_id].append(match.pk)
            for org_id, ids in by_org.items():
                result[org_id].extend(ids)
                hooks.run_matches_added(org_id, ids, "advisory")
    return removed, len(withdrawn)


def _rematch_chunk(packages, affected, live, stats) -> tuple[list[VulnerabilityMatch], int]:
    desired = _desired(packages, affected, stats)
    rows = VulnerabilityMatch.objects.filter(advisory_id__in=live, package_id__in=[p.pk for p in packages])
    existing = {(m["advisory_id"], m["package_id"]): m for m in rows.values("pk", "advisory_id", "package_id", "fixed")}
    stale = [m["pk"] for pair, m in existing.items() if pair not in desired]
    gone = VulnerabilityMatch.objects.filter(pk__in=stale).delete()[0] if stale else 0
    changed = [VulnerabilityMatch(pk=m["pk"], fixed=desired[pair][0]) for pair, m in existing.items()
               if pair in desired and m["fixed"] != desired[pair][0]]
    VulnerabilityMatch.objects.bulk_update(changed, ["fixed"], batch_size=1000)
    return _insert(desired, set(existing)), gone


def sboms_waiting_for(artifact_id: int) -> list[int]:
    """The ``sbom`` attestations bound to an artifact (made before it, naming it by template name and
    commit) whose components are not indexed yet."""
    return list(Attestation.objects.filter(artifact_id=artifact_id, type=AttestationType.SBOM)
                .exclude(pk__in=ComponentPackage.objects.filter(attestation__artifact_id=artifact_id)
                         .values("attestation_id")).values_list("pk", flat=True))


def _report(what: str, stats: MatchStats) -> None:
    if stats.unparsed:
        log.warning("matching %s: %d version(s) univers could not parse were not matched (e.g. %s)",
                    what, stats.unparsed, ", ".join(stats.unparsed_examples))
    log.info("matching %s: %d packages, %d pairs judged, %d matches, %d GIT ranges skipped",
             what, stats.packages, stats.pairs, stats.matched, stats.git_ranges)
