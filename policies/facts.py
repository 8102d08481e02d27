"""What the evidence vault knows about running artifacts, as ``ArtifactFacts`` for the evaluator.

Built on the evidence vault's own selectors (``evidence.selectors``) so "provenance" and
"compliant in its trail" mean exactly what the vault shows: ``provenance_for`` (batched) gives the
flow, trail and commit of the latest report and whether the artifact is compliant in its trail;
attestations are read in one batch and judged by the vault's ``evaluate`` (latest of each name wins,
overrides applied). A fixed number of queries whatever the number of artifacts.
"""

from collections import defaultdict

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from evidence.choices import AttestationType
from evidence.models import Artifact, Attestation, Flow
from evidence.selectors import evaluate, provenance_for
from snapshots.models import Snapshot, SnapshotEntry
from vulns.exposure import artifact_vulnerabilities, with_sbom

from .evaluation import ArtifactFacts


def _policy_type(label: str, builtin: set[str]) -> str:
    """An attestation's type as policies name it: a built-in type, or ``custom:<name>``."""
    return label if label in builtin else f"custom:{label}"


def _attestations(org, fingerprints: set[str]) -> dict[str, list[dict]]:
    """Per fingerprint, the current attestations about it (on the artifact, and trail-level ones of
    its trails): ``[{"name", "type", "compliant"}]``."""
    builtin = {choice.value for choice in AttestationType}
    records = list(Artifact.objects.for_org(org).filter(fingerprint__in=list(fingerprints))
                   .only("id", "fingerprint", "trail_id").order_by("created_at", "id"))
    if not records:
        return {}
    trail_ids = {r.trail_id for r in records if r.trail_id}
    by_artifact: dict[int, list] = defaultdict(list)
    by_trail: dict[int, list] = defaultdict(list)
    rows = Attestation.objects.for_org(org).filter(trail_id__in=trail_ids).select_related("custom_type")
    for att in rows:
        if att.artifact_id:
            by_artifact[att.artifact_id].append(att)
        elif not att.target_artifact and not att.artifact_fingerprint:
            by_trail[att.trail_id].append(att)
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for record in records:
        judged = evaluate([], by_artifact.get(record.pk, []) + by_trail.get(record.trail_id, []))
        for entry in judged["attestations"]:
            out[record.fingerprint][entry["name"]] = {
                "name": entry["name"], "type": _policy_type(entry["type"], builtin),
                "compliant": bool(entry["effective_compliant"]),
            }
    return {fingerprint: list(by_name.values()) for fingerprint, by_name in out.items()}


def vulnerability_facts(org, fingerprints: set[str]) -> tuple[set[str], dict[str, list[dict]]]:
    """(fingerprints with an SBOM, their vulnerabilities per fingerprint, worst first)."""
    covered = with_sbom(org, fingerprints)
    return covered, (artifact_vulnerabilities(org, sorted(covered)) if covered else {})


def gather_facts(org, artifacts: list[dict], vulnerabilities: bool = False) -> dict[tuple[str, str], ArtifactFacts]:
    """``[{name, fingerprint}]`` → ``{(name, fingerprint): ArtifactFacts}``. ``vulnerabilities``: also read
    whether each has an SBOM and its vulnerability matches (what a vulnerability rule or a Rego input needs)."""
    fingerprints = {a["fingerprint"] for a in artifacts if a.get("fingerprint")}
    provenance = provenance_for(org, fingerprints) if fingerprints else {}
    known = {fp for fp, info in provenance.items() if info["provenance"]}
    flow_names = {provenance[fp]["flow"] for fp in known}
    tags = dict(Flow.objects.for_org(org).filter(name__in=flow_names).values_list("name", "tags")) if known else {}
    attestations = _attestations(org, known) if known else {}
    covered, found = vulnerability_facts(org, fingerprints) if vulnerabilities else (set(), {})
    now = timezone.now()
    result = {}
    for item in artifacts:
        fingerprint = item.get("fingerprint") or ""
        facts = ArtifactFacts(fingerprint=fingerprint, name=item["name"], now=now,
                              has_sbom=fingerprint in covered, vulnerabilities=list(found.get(fingerprint, [])))
        info = provenance.get(fingerprint)
        if info and info["provenance"]:
            facts.flow_name = info["flow"]
            facts.flow_tags = dict(tags.get(info["flow"]) or {})
            facts.trail_name = info["trail"]
            facts.trail_compliant = info["artifact_compliant"]
            facts.attestations = attestations.get(fingerprint, [])
            facts.provenance = {
                "flow": info["flow"], "trail": info["trail"] or "", "commit": info["git_commit"] or "",
                "commit_url": info["commit_url"] or "",
                "html_url": settings.CSM_BASE_URL + reverse("flow-detail", args=[org.slug, info["flow"]]),
            }
        result[(item["name"], fingerprint)] = facts
    return result


def change_facts(environment, keys, index: int | None = None) -> dict[tuple[str, str], dict]:
    """Per (name, fingerprint) running in ``environment`` at snapshot ``index`` (None: now), its last change
    there — the snapshot where its current entry began (it started, or scaled) — as ``{"snapshot", "at",
    "outside_change_window"}``. Two queries whatever the number of artifacts."""
    keys = set(keys)
    if environment is None or not keys:
        return {}
    entries = SnapshotEntry.objects.filter(environment=environment, fingerprint__in={fp for _, fp in keys})
    if index is None:
        entries = entries.filter(to_index=None)
    else:
        entries = entries.filter(from_index__lte=index).exclude(to_index__lte=index)
    began: dict[tuple[str, str], int] = {}
    for name, fingerprint, from_index in entries.values_list("name", "fingerprint", "from_index"):
        if (name, fingerprint) in keys:
            began[(name, fingerprint)] = max(from_index, began.get((name, fingerprint), 0))
    snapshots = {number: (at, outside) for number, at, outside in Snapshot.objects.filter(
        environment=environment, index__in=set(began.values())).values_list("index", "created_at",
                                                                             "outside_change_window")}
    return {key: {"snapshot": number, "at": snapshots[number][0].isoformat(),
                  "outside_change_window": snapshots[number][1]}
            for key, number in began.items() if number in snapshots}
