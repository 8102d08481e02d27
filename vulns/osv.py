"""OSV import: read OSV JSON records from a directory, a ``.zip`` or an http(s) URL of a zip; store each
changed record as ``Advisory`` + ``AdvisoryAlias`` + ``AffectedPackage``; then tell the ``advisories_changed``
listeners (matching re-matches the components the changed advisories name).

Contract other modules rely on:

- ``import_sources(sources: list[str], *, ctx=None) -> ImportResult`` — ``ImportResult`` has ``created``,
  ``updated``, ``unchanged``, ``withdrawn``, ``rejected`` (counts) and ``changed_ids`` (advisory pks).
- ``group_for(alias: str) -> list[Advisory]`` — every advisory of the group the alias belongs to (any
  case of the id), [] when unknown.
- ``import_documents(documents: Iterable[dict], *, location: str) -> ImportResult`` — the same import for
  OSV documents already in memory (generated advisories of a benchmark), with the same rules and hooks.

How an import goes (docs/vulnerabilities.md, "Vulnerability data"):

- Records are read one at a time (a zip member or a file is never read beyond
  ``CSM_VULN_MAX_RECORD_BYTES``), validated against OSV schema 1.x (``parse_record``) and written in
  batches: one transaction per batch, in bulk, falling back to one savepoint per record when the database
  refuses something, so a record is stored whole or not at all and a bad one is reported (file and
  reason) and skipped.
- Incremental: a record whose canonical JSON (sorted keys, compact, UTF-8) has the SHA-256 already stored
  is skipped without a write; one with an older ``modified`` than the stored one never overwrites it.
- Alias groups: an advisory's own id and its ``aliases`` (and its ``upstream`` id when it names exactly
  one) link it to every advisory sharing one of those ids; each connected group gets one ``group_id`` —
  the smallest CVE id in it, else the smallest GHSA id, else the smallest id. Groups are recomputed for
  every advisory a batch touched and for the groups they were in before (an alias removed splits a group).
- A URL is fetched through the outbound guard (``csm.lib.outbound.download``) with the ETag and
  Last-Modified of the last successful import: an unchanged source costs one request answered 304.
- Vulnerability data is global and the audit trail is per org (``AuditEvent.org`` is required), so an
  import is not an audit event: it is logged (logger ``vulns.osv``, ``extra={"event": "vulns.import", ...}``)
  and each source's last run is kept in ``VulnSource``.
"""

import hashlib
import http.client
import json
import logging
import re
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cvss import CVSS2, CVSS3, CVSS4
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Upper
from django.utils import timezone

from csm.lib import outbound
from csm.lib.bounded import InputError, load_json

from . import hooks
from .choices import AliasKind, VulnSeverity
from .ecosystems import from_osv
from .models import Advisory, AdvisoryAlias, AffectedPackage, VulnerabilityMatch, VulnSource

log = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_ID_LENGTH = 200  # AdvisoryAlias.alias / Advisory.osv_id
MAX_KEPT_REJECTIONS = 1000  # per import; the count is always exact
MAX_CLOSURE = 50_000  # advisories; regrouping follows aliases no further (and logs it)
LOCK_KEY = "csm:vulns:sync-lock"
LOCK_SECONDS = 15 * 60  # renewed after every batch; a crashed import frees it after this long
URL_PRIVATE_SETTING = "CSM_VULN_SOURCES_ALLOW_PRIVATE"
RANGE_EVENTS = ("introduced", "fixed", "last_affected", "limit")
GHSA_SEVERITY = {"LOW": VulnSeverity.LOW, "MODERATE": VulnSeverity.MEDIUM, "MEDIUM": VulnSeverity.MEDIUM,
                 "HIGH": VulnSeverity.HIGH, "CRITICAL": VulnSeverity.CRITICAL}
# Ubuntu's priorities, as its OSV records state them (severity type "Ubuntu").
UBUNTU_SEVERITY = {"negligible": VulnSeverity.LOW, "low": VulnSeverity.LOW, "medium": VulnSeverity.MEDIUM,
                   "high": VulnSeverity.HIGH, "critical": VulnSeverity.CRITICAL}
CVSS_PREFERENCE = ("CVSS_V4", "CVSS_V3", "CVSS_V2")


class InvalidRecord(ValueError):
    """The document is not an OSV 1.x record csm can store; the message says which field and why."""


class SourceError(Exception):
    """A source cannot be read at all (missing, not a zip, refused or failed download)."""


class SyncBusy(Exception):
    """Another import or sync holds the lock."""


@dataclass
class ImportResult:
    """What an import did. ``older``: records skipped because the stored one has a newer ``modified``
    (counted apart from ``unchanged``); ``rejections``: (source, file, reason), the first
    ``MAX_KEPT_REJECTIONS``; ``failed``: (source, reason) for sources that could not be read at all;
    ``not_modified``: URLs answered 304; ``sources``: one result per source, in order."""

    location: str = ""
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    older: int = 0
    withdrawn: int = 0
    rejected: int = 0
    changed_ids: list[int] = field(default_factory=list)
    rejections: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)
    sources: list["ImportResult"] = field(default_factory=list)

    def counts(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "older": self.older, "withdrawn": self.withdrawn, "rejected": self.rejected}

    def reject(self, file: str, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_KEPT_REJECTIONS:
            self.rejections.append((self.location, file, reason))

    def merge(self, other: "ImportResult") -> None:
        for name, value in other.counts().items():
            setattr(self, name, getattr(self, name) + value)
        self.changed_ids.extend(other.changed_ids)
        self.rejections.extend(other.rejections[: MAX_KEPT_REJECTIONS - len(self.rejections)])
        self.failed.extend(other.failed)
        self.not_modified.extend(other.not_modified)
        self.sources.append(other)


@dataclass
class ParsedRecord:
    """The fields csm stores from one OSV record (``data`` is the record itself)."""

    data: dict
    osv_id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: list[str]
    upstream: list[str]
    summary: str
    details: str
    severity: str
    cvss_score: float | None
    cvss_vector: str
    references: list
    affected: list[dict]


# --- parsing and validation -------------------------------------------------------------------------------


def canonical_sha256(data: dict) -> str:
    """SHA-256 of the record's canonical JSON (sorted keys, no whitespace, UTF-8): the same record in
    another layout (indentation, key order) is the same content."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _timestamp(value, name: str, *, required: bool = False) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRecord(f"{name}: required, an RFC 3339 timestamp" if required else
                            f"{name}: must be an RFC 3339 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRecord(f"{name}: {value[:60]!r} is not an RFC 3339 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _published(value) -> datetime | None:
    """``published``; the Go database's zero time (``0001-01-01T00:00:00Z``, filled in by osv.dev) is no date."""
    published = _timestamp(value, "published")
    return None if published is not None and published.year == 1 else published


def _text(data: dict, name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"{name}: must be a string")
    return value


def _ids(data: dict, name: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise InvalidRecord(f"{name}: must be a list of ids (strings)")
    for item in value:
        if len(item) > MAX_ID_LENGTH:
            raise InvalidRecord(f"{name}: {item[:40]!r}… is longer than {MAX_ID_LENGTH} characters")
    return [item.strip() for item in value]


def _ranges(ranges, where: str) -> list:
    if ranges is None:
        return []
    if not isinstance(ranges, list):
        raise InvalidRecord(f"{where}.ranges: must be a list")
    for r_index, range_ in enumerate(ranges):
        at = f"{where}.ranges[{r_index}]"
        if not isinstance(range_, dict) or not isinstance(range_.get("type"), str):
            raise InvalidRecord(f"{at}: must be an object with a type")
        events = range_.get("events")
        if not isinstance(events, list) or not events:
            raise InvalidRecord(f"{at}.events: required, a non-empty list")
        for e_index, event in enumerate(events):
            keys = [key for key in RANGE_EVENTS if isinstance(event, dict) and key in event]
            if len(keys) != 1 or not isinstance(event[keys[0]], str):
                raise InvalidRecord(f"{at}.events[{e_index}]: must have exactly one of "
                                    f"{', '.join(RANGE_EVENTS)}, a version string")
    return ranges


def _affected(data: dict) -> list[dict]:
    affected = data.get("affected")
    if affected is None:
        return []
    if not isinstance(affected, list):
        raise InvalidRecord("affected: must be a list")
    for index, entry in enumerate(affected):
        where = f"affected[{index}]"
        if not isinstance(entry, dict):
            raise InvalidRecord(f"{where}: must be an object")
        package = entry.get("package")
        if package is not None:
            if not isinstance(package, dict):
                raise InvalidRecord(f"{where}.package: must be an object")
            for key in ("ecosystem", "name"):
                if not isinstance(package.get(key), str) or not package[key]:
                    raise InvalidRecord(f"{where}.package.{key}: required, a string")
            if len(package["ecosystem"]) > 100 or len(package["name"]) > 500:
                raise InvalidRecord(f"{where}.package: ecosystem or name too long")
        _ranges(entry.get("ranges"), where)
        versions = entry.get("versions")
        if versions is not None and (not isinstance(versions, list)
                                     or not all(isinstance(version, str) for version in versions)):
            raise InvalidRecord(f"{where}.versions: must be a list of strings")
    return affected


def _cvss(kind: str, vector: str) -> tuple[float, str]:
    """(base score, level) of a CVSS vector; raises ValueError (or the library's error) when invalid."""
    if kind == "CVSS_V4":
        parsed = CVSS4(vector)
        score, level = float(parsed.base_score), str(parsed.severity).lower()
    elif kind == "CVSS_V3":
        parsed = CVSS3(vector)
        score, level = float(parsed.scores()[0]), str(parsed.severities()[0]).lower()
    else:
        score = float(CVSS2(vector).scores()[0])
        # CVSS v2 has no qualitative scale of its own; NVD's: 0-3.9 low, 4-6.9 medium, 7-10 high.
        level = "high" if score >= 7 else "medium" if score >= 4 else "low"
    # A base score of 0.0 ("None") is still a published vulnerability: the lowest level, not "unknown".
    return score, level if level in VulnSeverity.values and level != "unknown" else VulnSeverity.LOW


def _severity(data: dict, affected: list[dict]) -> tuple[str, float | None, str]:
    """(level, CVSS base score, vector): the best CVSS vector the record states (v4, then v3.x, then v2;
    top-level ``severity`` before the packages'), else the database's own word (GHSA
    ``database_specific.severity``, Ubuntu's priority), else unknown — never low by default."""
    entries = [entry for entry in (data.get("severity") or []) if isinstance(entry, dict)]
    for package in affected:
        entries += [entry for entry in (package.get("severity") or []) if isinstance(entry, dict)]
    for kind in CVSS_PREFERENCE:
        for entry in entries:
            vector = entry.get("score")
            if entry.get("type") != kind or not isinstance(vector, str):
                continue
            try:
                score, level = _cvss(kind, vector.strip())
            except Exception:  # the cvss library raises several error types for a malformed vector
                log.info("ignoring a malformed %s vector %r in %s", kind, vector[:100], data.get("id"))
                continue
            return level, score, vector.strip()[:300]
    database = data.get("database_specific")
    stated = database.get("severity") if isinstance(database, dict) else None
    if isinstance(stated, str) and stated.strip().upper() in GHSA_SEVERITY:
        return GHSA_SEVERITY[stated.strip().upper()], None, ""
    for entry in entries:
        if entry.get("type") == "Ubuntu" and str(entry.get("score", "")).lower() in UBUNTU_SEVERITY:
            return UBUNTU_SEVERITY[str(entry["score"]).lower()], None, ""
    return VulnSeverity.UNKNOWN, None, ""


def parse_record(data) -> ParsedRecord:
    """Validate one decoded OSV document (schema 1.x) and pick out what csm stores; raise InvalidRecord
    naming the field and the problem."""
    if not isinstance(data, dict):
        raise InvalidRecord("the document is not a JSON object")
    version = data.get("schema_version")
    if version is not None and (not isinstance(version, str) or not version.startswith("1.")):
        raise InvalidRecord(f"schema_version: {str(version)[:20]!r} is not OSV schema 1.x")
    osv_id = data.get("id")
    if not isinstance(osv_id, str) or not osv_id.strip():
        raise InvalidRecord("id: required, a string")
    if len(osv_id) > MAX_ID_LENGTH or osv_id != osv_id.strip():
        raise InvalidRecord(f"id: must be at most {MAX_ID_LENGTH} characters, without surrounding spaces")
    references = data.get("references")
    if references is not None and (not isinstance(references, list) or not all(
            isinstance(ref, dict) and isinstance(ref.get("url"), str) for ref in references)):
        raise InvalidRecord("references: must be a list of objects with a url")
    if data.get("severity") is not None and not isinstance(data["severity"], list):
        raise InvalidRecord("severity: must be a list")
    affected = _affected(data)
    severity, score, vector = _severity(data, affected)
    return ParsedRecord(
        data=data, osv_id=osv_id,
        modified=_timestamp(data.get("modified"), "modified", required=True),
        published=_published(data.get("published")),
        withdrawn=_timestamp(data.get("withdrawn"), "withdrawn"),
        aliases=_ids(data, "aliases"), upstream=_ids(data, "upstream"),
        summary=_text(data, "summary"), details=_text(data, "details"),
        severity=severity, cvss_score=score, cvss_vector=vector,
        references=references or [], affected=affected,
    )


def decode(raw: bytes):
    """The JSON document in ``raw`` through the project's bounded parser (UTF-8, nesting depth limited by
    ``CSM_JSON_MAX_DEPTH``, no NaN / Infinity / 1e400); raises InvalidRecord."""
    try:
        return load_json(raw, "the record", max_depth=settings.CSM_JSON_MAX_DEPTH)
    except InputError as exc:
        raise InvalidRecord(exc.message) from None


# --- writing --------------------------------------------------------------------------------------------


def _alias_rows(advisory: Advisory, parsed: ParsedRecord) -> list[AdvisoryAlias]:
    single_upstream = len(set(parsed.upstream)) == 1
    rows, seen = [], set()
    for alias, kind, links in ([(parsed.osv_id, AliasKind.ID, True)]
                               + [(alias, AliasKind.ALIAS, True) for alias in parsed.aliases]
                               + [(alias, AliasKind.UPSTREAM, single_upstream) for alias in parsed.upstream]):
        if alias.upper() in seen:
            continue
        seen.add(alias.upper())
        rows.append(AdvisoryAlias(advisory=advisory, alias=alias, kind=kind, links_group=links))
    return rows


def _affected_rows(advisory: Advisory, parsed: ParsedRecord) -> list[AffectedPackage]:
    rows = []
    for entry in parsed.affected:
        package = entry.get("package")
        found = from_osv(package["ecosystem"], package["name"]) if package else None
        if found is None:  # an ecosystem csm does not match stays in ``record``, unindexed
            continue
        rows.append(AffectedPackage(advisory=advisory, ecosystem=package["ecosystem"], name=package["name"],
                                    purl_type=found.purl_type, package_key=found.key[:600],
                                    ranges=entry.get("ranges") or [], versions=entry.get("versions") or []))
    return rows


def _fields(parsed: ParsedRecord, sha: str, location: str, now) -> dict:
    return {
        "aliases": sorted(set(parsed.aliases) | set(parsed.upstream)),
        "summary": parsed.summary, "details": parsed.details, "severity": parsed.severity,
        "cvss_score": parsed.cvss_score, "cvss_vector": parsed.cvss_vector, "published": parsed.published,
        "modified": parsed.modified, "withdrawn": parsed.withdrawn, "references": parsed.references,
        "source": location[:500], "content_sha256": sha, "record": parsed.data, "updated_at": now,
    }


def _bucket(parsed: ParsedRecord, current: Advisory | None) -> str:
    if parsed.withdrawn and (current is None or current.withdrawn is None):
        return "withdrawn"
    return "created" if current is None else "updated"


def _write(plan: list[tuple[str, ParsedRecord, str, Advisory | None]], location: str) -> list[tuple[int, str]]:
    """Create or replace the planned advisories (file, record, SHA-256, stored advisory or None) with their
    aliases and affected packages, in bulk; returns (advisory pk, bucket) in plan order."""
    now = timezone.now()
    new = {parsed.osv_id: Advisory(osv_id=parsed.osv_id, group_id=parsed.osv_id, imported_at=now,
                                   **_fields(parsed, sha, location, now))
           for _, parsed, sha, current in plan if current is None}
    Advisory.objects.bulk_create(new.values())
    replaced = [current.pk for _, _, _, current in plan if current is not None]
    AdvisoryAlias.objects.filter(advisory_id__in=replaced).delete()
    AffectedPackage.objects.filter(advisory_id__in=replaced).delete()
    written, aliases, affected = [], [], []
    for _, parsed, sha, current in plan:
        if current is None:
            advisory = new[parsed.osv_id]
        else:
            Advisory.objects.filter(pk=current.pk).update(**_fields(parsed, sha, location, now))
            advisory = current
        aliases += _alias_rows(advisory, parsed)
        affected += _affected_rows(advisory, parsed)
        written.append((advisory.pk, _bucket(parsed, current)))
    AdvisoryAlias.objects.bulk_create(aliases)
    AffectedPackage.objects.bulk_create(affected)
    return written


def _store_batch(items: list[tuple[str, ParsedRecord, str]], result: ImportResult) -> None:
    """Write one batch (file, parsed record, content SHA-256) in one transaction — in bulk, or, when the
    database refuses something, one savepoint per record so only the bad one is rejected; regroup what it
    touched; once committed, tell the ``advisories_changed`` listeners."""
    written: list[tuple[int, str]] = []
    with transaction.atomic():
        existing = {advisory.osv_id: advisory for advisory in Advisory.objects.select_for_update().filter(
            osv_id__in={parsed.osv_id for _, parsed, _ in items}).only(
            "id", "osv_id", "group_id", "content_sha256", "modified", "withdrawn")}
        plan = []
        for file, parsed, sha in items:
            current = existing.get(parsed.osv_id)
            if current is not None and current.content_sha256 == sha:
                result.unchanged += 1
            elif current is not None and parsed.modified < current.modified:
                result.older += 1
            else:
                plan.append((file, parsed, sha, current))
        ids = [parsed.osv_id for _, parsed, _, _ in plan]
        try:
            if len(ids) != len(set(ids)):  # the same id twice in one batch: in order, one at a time
                raise _OneByOne
            with transaction.atomic():
                written = _write(plan, result.location)
        except (DatabaseError, _OneByOne):
            written = _write_one_by_one(plan, existing, result)
        for _, bucket in written:
            setattr(result, bucket, getattr(result, bucket) + 1)
        changed = [pk for pk, _ in written]
        old_groups = {current.group_id for _, _, _, current in plan if current is not None}
        regroup(set(changed) | set(Advisory.objects.filter(group_id__in=old_groups).values_list("pk", flat=True)))
    result.changed_ids.extend(changed)
    if changed:
        # At once when the batch committed; after the caller's commit when it runs inside a transaction.
        transaction.on_commit(lambda: _notify(changed))


class _OneByOne(Exception):
    pass


def _write_one_by_one(plan, existing: dict, result: ImportResult) -> list[tuple[int, str]]:
    """The careful path: each record in its own savepoint, decided against what the batch stored before it."""
    written = []
    for file, parsed, sha, _ in plan:
        current = existing.get(parsed.osv_id)
        if current is not None and current.content_sha256 == sha:
            result.unchanged += 1
            continue
        if current is not None and parsed.modified < current.modified:
            result.older += 1
            continue
        try:
            with transaction.atomic():
                (pk, bucket), = _write([(file, parsed, sha, current)], result.location)
        except DatabaseError as exc:  # e.g. a NUL character PostgreSQL refuses in text
            result.reject(file, f"could not be stored: {str(exc).strip().splitlines()[0][:200]}")
            continue
        existing[parsed.osv_id] = Advisory.objects.only(
            "id", "osv_id", "group_id", "content_sha256", "modified", "withdrawn").get(pk=pk)
        written.append((pk, bucket))
    return written


def _notify(advisory_ids: list[int]) -> None:
    try:
        hooks.run_advisories_changed(advisory_ids)
    except Exception:  # the advisories are committed; a failing listener must not stop the import
        log.exception("an advisories_changed listener failed for %d advisories", len(advisory_ids))


# --- alias groups ---------------------------------------------------------------------------------------


def _natural(value: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", value.upper())]


def group_id_for(ids: set[str]) -> str:
    """The group's id: the smallest CVE id (by year, then number), else the smallest GHSA id, else the
    smallest id."""
    for prefix in ("CVE-", "GHSA-"):
        candidates = [value for value in ids if value.upper().startswith(prefix)]
        if candidates:
            return min(candidates, key=_natural)
    return min(ids, key=_natural)


def _closure(advisory_ids: set[int]) -> set[int]:
    """Every advisory connected to these through linking ids: a few queries per link depth, for a whole
    batch at once. Stops growing past MAX_CLOSURE advisories (logged), so one pathological chain of
    aliases cannot make an import crawl the whole database."""
    advisories, frontier, seen_ids = set(advisory_ids), set(advisory_ids), set()
    while frontier:
        ids = {alias.upper() for alias in AdvisoryAlias.objects.filter(
            advisory_id__in=frontier, links_group=True).values_list("alias", flat=True)} - seen_ids
        if not ids:
            break
        seen_ids |= ids
        frontier = set(AdvisoryAlias.objects.annotate(upper=Upper("alias")).filter(
            links_group=True, upper__in=list(ids)).values_list("advisory_id", flat=True)) - advisories
        advisories |= frontier
        if len(advisories) > MAX_CLOSURE:
            log.warning("alias groups reached from %d advisories exceed %d advisories; not followed further",
                        len(advisory_ids), MAX_CLOSURE)
            break
    return advisories


def _components(advisory_ids: set[int]) -> list[tuple[set[int], set[str]]]:
    """The alias groups among these advisories (union-find over their linking ids): (advisory pks, ids as
    first spelled) per group."""
    parent: dict = {}

    def find(node):
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    spelled: dict[str, str] = {}
    for advisory_id, alias in AdvisoryAlias.objects.filter(
            advisory_id__in=advisory_ids, links_group=True).values_list("advisory_id", "alias"):
        spelled.setdefault(alias.upper(), alias)
        parent[find(("a", advisory_id))] = find(("i", alias.upper()))
    groups: dict = {}
    for advisory_id in advisory_ids:
        groups.setdefault(find(("a", advisory_id)), (set(), set()))[0].add(advisory_id)
    for upper, alias in spelled.items():
        if find(("i", upper)) in groups:
            groups[find(("i", upper))][1].add(alias)
    return list(groups.values())


def regroup(advisory_ids: set[int]) -> None:
    """Recompute ``group_id`` for the alias groups of these advisories (and of their matches, which carry
    it): call inside the transaction that changed their aliases."""
    if not advisory_ids:
        return
    members = _closure(set(advisory_ids))
    current = dict(Advisory.objects.filter(pk__in=members).values_list("pk", "group_id"))
    moves: dict[str, set[int]] = {}
    for component, ids in _components(members):
        if not ids:
            continue
        group = group_id_for(ids)
        moving = {pk for pk in component if current.get(pk) != group}
        if moving:
            moves[group] = moving
    if not moves:
        return
    Advisory.objects.bulk_update([Advisory(pk=pk, group_id=group) for group, pks in moves.items() for pk in pks],
                                 ["group_id"], batch_size=1000)
    moved = [pk for pks in moves.values() for pk in pks]
    VulnerabilityMatch.objects.filter(advisory_id__in=moved).update(
        group_id=Subquery(Advisory.objects.filter(pk=OuterRef("advisory_id")).values("group_id")[:1]))


def group_for(alias: str) -> list[Advisory]:
    """Every advisory of the group(s) the id belongs to, any case: its own group, and the group of any
    record naming it (a distribution notice listing this CVE among others). [] when unknown."""
    alias = (alias or "").strip()
    if not alias:
        return []
    groups = AdvisoryAlias.objects.annotate(upper=Upper("alias")).filter(upper=alias.upper()).values(
        "advisory__group_id")
    return list(Advisory.objects.filter(group_id__in=groups).order_by("osv_id"))


# --- reading sources ------------------------------------------------------------------------------------


def _is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def _file_records(paths, root: Path, max_bytes: int) -> Iterator[tuple[str, bytes | None, str]]:
    """(file, content or None, reason) for every file of ``paths`` (named relative to ``root``)."""
    for path in paths:
        if not path.is_file():
            continue
        name = str(path.relative_to(root))
        try:
            size = path.stat().st_size
            if size > max_bytes:
                yield name, None, f"larger than {max_bytes} bytes (CSM_VULN_MAX_RECORD_BYTES)"
                continue
            yield name, path.read_bytes(), ""
        except OSError as exc:
            yield name, None, f"cannot be read: {exc.strerror or exc}"


def _zip_records(file, max_bytes: int) -> Iterator[tuple[str, bytes | None, str]]:
    """(member, content or None, reason) for every ``*.json`` member of a zip (osv.dev's ``all.zip``:
    one record per member). A member is never expanded beyond ``max_bytes``, whatever its header claims."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"not a zip archive: {exc}") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".json"):
                continue
            if info.file_size > max_bytes:
                yield info.filename, None, f"larger than {max_bytes} bytes (CSM_VULN_MAX_RECORD_BYTES)"
                continue
            try:
                with archive.open(info) as member:
                    content = member.read(max_bytes + 1)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                yield info.filename, None, f"cannot be read from the zip: {exc}"
                continue
            if len(content) > max_bytes:
                yield info.filename, None, f"larger than {max_bytes} bytes (CSM_VULN_MAX_RECORD_BYTES)"
                continue
            yield info.filename, content, ""


def _import_records(records: Iterator[tuple[str, bytes | dict | None, str]], result: ImportResult,
                    keep_alive: Callable[[], None]) -> None:
    """Validate and store (name, raw bytes or an already decoded document, or None and why) in batches."""
    batch: list[tuple[str, ParsedRecord, str]] = []
    for name, content, reason in records:
        if content is None:
            result.reject(name, reason)
            continue
        try:
            data = content if isinstance(content, dict) else decode(content)
            parsed = parse_record(data)
        except InvalidRecord as exc:
            result.reject(name, str(exc))
            continue
        batch.append((name, parsed, canonical_sha256(data)))
        if len(batch) >= BATCH_SIZE:
            _store_batch(batch, result)
            keep_alive()
            batch = []
    if batch:
        _store_batch(batch, result)


def _import_path(location: str, result: ImportResult, keep_alive: Callable[[], None]) -> None:
    path = Path(location)
    max_bytes = settings.CSM_VULN_MAX_RECORD_BYTES
    try:
        if path.is_dir():
            records = _file_records(sorted(path.rglob("*.json")), path, max_bytes)
        elif path.is_file() and path.suffix.lower() == ".zip":
            with path.open("rb") as file:
                _import_records(_zip_records(file, max_bytes), result, keep_alive)
            return
        elif path.is_file() and path.suffix.lower() == ".json":
            records = _file_records([path], path.parent, max_bytes)
        elif not path.exists():
            raise SourceError("no such file or directory")
        else:
            raise SourceError("not a directory, a .zip or a .json file")
        _import_records(records, result, keep_alive)
    except PermissionError as exc:
        raise SourceError(f"cannot be read: {exc.strerror}") from None


def _import_url(source: VulnSource, result: ImportResult, keep_alive: Callable[[], None]) -> dict:
    """Download the zip (conditionally) and import it; returns the VulnSource fields to save."""
    headers = {}
    if source.etag:
        headers["If-None-Match"] = source.etag
    if source.last_modified:
        headers["If-Modified-Since"] = source.last_modified
    with tempfile.TemporaryFile(prefix="csm-osv-") as file:
        try:
            answer = outbound.download(source.location, file, max_bytes=settings.CSM_VULN_DOWNLOAD_MAX_BYTES,
                                       headers=headers, timeout=settings.CSM_VULN_DOWNLOAD_TIMEOUT_SECONDS,
                                       private_setting=URL_PRIVATE_SETTING, progress=lambda _: keep_alive())
        except outbound.OutboundRefused as exc:
            raise SourceError(f"refused: {exc}") from None
        except outbound.ResponseTooLarge as exc:
            raise SourceError(f"download stopped: {exc} (CSM_VULN_DOWNLOAD_MAX_BYTES)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(f"download failed: {exc or type(exc).__name__}") from None
        if answer.status == 304:
            result.not_modified.append(source.location)
            return {"last_status": "not_modified", "last_bytes": 0}
        if answer.status != 200:
            hint = (f" (redirects are not followed; use the address it points to: "
                    f"{answer.headers.get('location', '')[:300]})" if 300 <= answer.status < 400 else "")
            raise SourceError(f"the server answered HTTP {answer.status}{hint}")
        file.seek(0)
        _import_records(_zip_records(file, settings.CSM_VULN_MAX_RECORD_BYTES), result, keep_alive)
        return {"last_status": "ok", "last_bytes": answer.size, "etag": answer.headers.get("etag", "")[:500],
                "last_modified": answer.headers.get("last-modified", "")[:100]}


def import_source(location: str, *, keep_alive: Callable[[], None] = lambda: None) -> ImportResult:
    """Import one source and record its run in ``VulnSource``; a source that cannot be read at all ends in
    ``result.failed`` (records of it already committed stay)."""
    result = ImportResult(location=location)
    source, _ = VulnSource.objects.get_or_create(location=location[:2000])
    started = timezone.now()
    update = {"last_status": "ok", "last_bytes": 0}
    try:
        if _is_url(location):
            update = _import_url(source, result, keep_alive)
        else:
            _import_path(location, result, keep_alive)
        update.update(last_error="", last_success_at=timezone.now())
    except SourceError as exc:
        result.failed.append((location, str(exc)))
        update = {"last_status": "error", "last_error": str(exc)[:2000], "last_bytes": 0}
    except Exception as exc:  # a bug or a lost database: the status page must not keep saying "ok"
        VulnSource.objects.filter(pk=source.pk).update(last_run_at=started, last_status="error",
                                                       last_error=f"import crashed: {exc!r}"[:2000])
        raise
    counts = result.counts()
    VulnSource.objects.filter(pk=source.pk).update(
        last_run_at=started, last_counts=counts,
        last_rejected=[{"file": file, "reason": reason} for _, file, reason in result.rejections[:50]], **update)
    log.info("vulns import %s: %s", location, update["last_status"], extra={
        "event": "vulns.import", "source": location, "status": update["last_status"],
        "error": update.get("last_error", ""), "counts": counts})
    return result


@contextmanager
def sync_lock():
    """One import or sync at a time (raises SyncBusy). Held in the cache with a timeout, renewed by the
    ``keep_alive`` it yields after every batch, so a crashed import frees it after LOCK_SECONDS."""
    token = uuid.uuid4().hex
    if not cache.add(LOCK_KEY, token, timeout=LOCK_SECONDS):
        raise SyncBusy("another vulnerability import or sync is running; try again when it has finished")

    def keep_alive():
        cache.touch(LOCK_KEY, LOCK_SECONDS)

    try:
        yield keep_alive
    finally:
        if cache.get(LOCK_KEY) == token:
            cache.delete(LOCK_KEY)


def import_sources(sources: list[str], *, ctx=None) -> ImportResult:
    """Import every source in order under the sync lock (SyncBusy when another import runs). ``ctx`` (an
    AuditContext) only names the actor in the log: advisories are global and audit events belong to an org."""
    total = ImportResult()
    with sync_lock() as keep_alive:
        for location in sources:
            result = import_source(location, keep_alive=keep_alive)
            total.merge(result)
    if ctx is not None:
        actor = getattr(ctx, "actor_label", "")
        log.info("vulns import by %s: %s", actor, total.counts(),
                 extra={"event": "vulns.import.done", "actor": actor, "counts": total.counts()})
    return total


def import_documents(documents: Iterable[dict], *, location: str) -> ImportResult:
    """Import OSV documents already in memory (a generator's, a benchmark's) exactly as a source's records,
    under the same lock, validation, batches and hooks; ``location`` names them in ``Advisory.source`` and
    in rejections (the record's id, or its position, names each)."""
    result = ImportResult(location=location)
    with sync_lock() as keep_alive:
        _import_records(((str(document.get("id", index)) if isinstance(document, dict) else str(index),
                          document if isinstance(document, dict) else None, "the document is not a JSON object")
                         for index, document in enumerate(documents)), result, keep_alive)
    return result
