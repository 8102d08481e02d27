"""VEX (owned by the VEX helper): the ``vex`` attestation's statements (OpenVEX, CycloneDX VEX) stored as
``VexStatement`` rows, and the suppression rule.

Contract other modules rely on:

- ``index_vex(attestation_id: int) -> int`` — store the statements of a committed ``vex`` attestation.
- ``suppressions(org, fingerprints, aliases_by_group: dict[str, set[str]]) -> dict[tuple[str, str], dict]``
  — ``{(artifact_fingerprint, group_id): {"status", "justification", "impact_statement",
  "attestation_id", "created_at", "vulnerability_id"}}`` for every (artifact, vulnerability group) whose
  newest applicable statement has a suppressing status (``choices.SUPPRESSING``).

What a statement applies to (the attestation is the statement's subject, as OpenVEX's ATTESTING.md says
of an attestation's subjects):

- only to the artifact the attestation is about (its ``artifact_fingerprint``, or the artifact it was
  bound to later); an attestation about no artifact (a trail's) suppresses nothing;
- a statement without products applies to that whole artifact;
- a product naming a SHA-256 digest (``pkg:oci/app@sha256:…``, ``hashes.sha-256``, a CycloneDX component's
  SHA-256 hash) applies only when the digest is the artifact's fingerprint; a product naming another
  digest is ignored for this artifact;
- an image or other whole-product name without a digest (``pkg:oci/app``, ``nginx``, CycloneDX's
  ``metadata.component``) applies to the whole artifact: the reporter attached the document to it;
- a package purl product (``pkg:pypi/jinja2@3.1.2``) and a product's ``subcomponents`` narrow the
  statement to those components (a matched component is covered when its package key is the same and,
  where the VEX names a version, its version too); an unresolved CycloneDX ref applies to nothing.

One ``VexStatement`` row is stored per id the statement names (its vulnerability and each alias), so a
document naming a GHSA id with its CVE alias is found from either. Ids are compared normalized
(``normal_id``: ``cve-…`` and ``CVE-…`` are one id).

Which statement is newest: statements take the time csm received their attestation (``created_at``), so a
later attestation overrides an earlier one whatever dates its author wrote; within one attestation the
statements' own timestamps (OpenVEX inheritance: the statement's, else the document's), then document
order, decide.
"""

import re
from datetime import UTC, datetime

from django.db import transaction
from django.utils.dateparse import parse_datetime

from evidence.choices import AttestationType
from evidence.models import Attestation
from evidence.parsers.vex import statement_scope

from . import ecosystems
from .choices import SUPPRESSING
from .models import VexStatement, VulnerabilityMatch

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_UPPER = re.compile(r"^(CVE|PYSEC|RUSTSEC|GO|OSV|DSA|DLA|USN|ALSA|RHSA|CGA|BIT)-", re.IGNORECASE)


def normal_id(value: str) -> str:
    """One spelling of a vulnerability id: CVE / PYSEC / … ids upper case, GHSA ids as GitHub writes them
    (``GHSA-`` then lower case), anything else as written."""
    value = (value or "").strip()
    if value[:5].upper() == "GHSA-":
        return "GHSA-" + value[5:].lower()
    if _UPPER.match(value):
        return value.upper()
    return value


def _time(text: str) -> datetime:
    parsed = parse_datetime(text) if text else None
    if parsed is None:
        return _EARLIEST
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ids(statement: dict) -> list[str]:
    ids = [normal_id(statement["vulnerability"])] + [normal_id(alias) for alias in statement.get("aliases") or []]
    return [value for value in dict.fromkeys(ids) if value]


def index_vex(attestation_id: int) -> int:
    """Store the statements of a committed ``vex`` attestation that apply to its artifact; returns how many
    rows the attestation has. Idempotent (a second delivery stores nothing), and a no-op until the
    attestation names or is bound to an artifact (``index_bound_vex`` runs when it is)."""
    with transaction.atomic():
        attestation = (Attestation.objects.select_for_update().filter(pk=attestation_id, type=AttestationType.VEX)
                       .first())
        if attestation is None:
            return 0
        fingerprint = attestation.artifact_fingerprint
        if not fingerprint and attestation.artifact_id:
            fingerprint = attestation.artifact.fingerprint
        if not fingerprint:
            return 0
        existing = VexStatement.objects.filter(attestation=attestation).count()
        if existing:
            return existing
        statements = (attestation.results or {}).get("statements") or []
        ordered = sorted(enumerate(statements), key=lambda pair: (_time(pair[1].get("timestamp", "")), pair[0]))
        rows = []
        for _, statement in ordered:
            scope = statement_scope(statement, fingerprint)
            if scope is None:
                continue
            for vulnerability_id in _ids(statement):
                rows.append(VexStatement(
                    org_id=attestation.org_id, attestation=attestation, artifact_fingerprint=fingerprint,
                    vulnerability_id=vulnerability_id[:200], status=statement["status"],
                    justification=statement.get("justification", "")[:200],
                    impact_statement=statement.get("impact_statement", ""),
                    action_statement=statement.get("action_statement", ""), subcomponents=scope,
                    created_at=attestation.created_at))
        VexStatement.objects.bulk_create(rows, batch_size=1000)
        return len(rows)


def index_bound_vex(artifact_id: int) -> int:
    """Index the ``vex`` attestations an artifact's report bound to it (made before the artifact, naming it
    by template name and commit)."""
    ids = Attestation.objects.filter(artifact_id=artifact_id, type=AttestationType.VEX).values_list("pk", flat=True)
    return sum(index_vex(attestation_id) for attestation_id in list(ids))


def _covers(identifiers: list[str], purl: str) -> bool:
    """Whether a statement narrowed to ``identifiers`` covers the component ``purl``."""
    component = ecosystems.from_purl(purl)
    for identifier in identifiers:
        if identifier == purl:
            return True
        named = ecosystems.from_purl(identifier)
        if component is not None and named is not None and named.key == component.key \
                and (not named.version or named.version == component.version):
            return True
    return False


def _decide(statements: list[dict], purls: list[str]) -> dict | None:
    """The statement that decides for one (artifact, group), oldest-first ``statements``: per matched
    component the newest statement covering it; suppressed only when every component's decider
    suppresses (then the newest of them is reported). Without known components only whole-artifact
    statements can decide."""
    whole = [s for s in statements if not s["subcomponents"]]
    if not purls:
        return whole[-1] if whole and whole[-1]["status"] in SUPPRESSING else None
    deciders = []
    for purl in purls:
        covering = [s for s in statements if not s["subcomponents"] or _covers(s["subcomponents"], purl)]
        if not covering or covering[-1]["status"] not in SUPPRESSING:
            return None
        deciders.append(covering[-1])
    return max(deciders, key=lambda s: (s["created_at"], s["id"]))


def suppressions(org, fingerprints, aliases_by_group: dict[str, set[str]]) -> dict[tuple[str, str], dict]:
    """``{(fingerprint, group_id): the deciding statement}`` for each pair whose newest applicable VEX
    statement suppresses. One query, two when a statement is narrowed to components (then the pairs'
    matched component purls are read)."""
    fingerprints = sorted(set(fingerprints))
    groups_by_id: dict[str, set[str]] = {}
    for group_id, aliases in aliases_by_group.items():
        for alias in {group_id, *aliases}:
            groups_by_id.setdefault(normal_id(alias), set()).add(group_id)
    if not fingerprints or not groups_by_id:
        return {}
    rows = (VexStatement.objects.for_org(org)
            .filter(artifact_fingerprint__in=fingerprints, vulnerability_id__in=sorted(groups_by_id))
            .order_by("created_at", "id")
            .values("id", "artifact_fingerprint", "vulnerability_id", "status", "justification", "impact_statement",
                    "action_statement", "subcomponents", "attestation_id", "created_at"))
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        for group_id in groups_by_id.get(row["vulnerability_id"], ()):
            pair = by_pair.setdefault((row["artifact_fingerprint"], group_id), [])
            if not pair or pair[-1]["attestation_id"] != row["attestation_id"] or pair[-1]["status"] != row["status"] \
                    or pair[-1]["subcomponents"] != row["subcomponents"] or pair[-1]["created_at"] != row["created_at"]:
                pair.append(row)
            else:
                pair[-1] = row  # the same statement under another alias
    narrowed = {pair for pair, statements in by_pair.items() if any(s["subcomponents"] for s in statements)}
    purls: dict[tuple[str, str], list[str]] = {}
    if narrowed:
        matches = (VulnerabilityMatch.objects.for_org(org)
                   .filter(artifact_fingerprint__in=sorted({fp for fp, _ in narrowed}),
                           group_id__in=sorted({group for _, group in narrowed}))
                   .values_list("artifact_fingerprint", "group_id", "package__purl").distinct())
        for fingerprint, group_id, purl in matches:
            purls.setdefault((fingerprint, group_id), []).append(purl)
    out = {}
    for pair, statements in by_pair.items():
        decider = _decide(statements, sorted(set(purls.get(pair, []))) if pair in narrowed else [])
        if decider is not None:
            out[pair] = {key: decider[key] for key in ("status", "justification", "impact_statement",
                                                       "action_statement", "attestation_id", "created_at",
                                                       "vulnerability_id", "subcomponents")}
    return out
