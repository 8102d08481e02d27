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
