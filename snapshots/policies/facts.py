"""What the evidence vault knows about running artifacts, as ``ArtifactFacts`` for the evaluator.

One query batch per call (no N+1): every evidence ``Artifact`` row for the fingerprints, their flows
and trails, and the attestations of those trails. The newest report of a fingerprint decides its
provenance (flow, trail, commit). Within a trail, a newer attestation with the same name (for the
same artifact, or trail-level) supersedes the older one.
"""

from collections import defaultdict

from django.conf import settings

from .evaluation import ArtifactFacts


def _policy_type(attestation) -> str:
    """The attestation's type in policy terms: built-in name or ``custom:<name>``."""
    if attestation.custom_type_id:
        return f"custom:{attestation.custom_type.name}"
    return attestation.type


def _latest_by_name(attestations) -> dict[str, object]:
    latest: dict[str, object] = {}
    for att in sorted(attestations, key=lambda a: (a.created_at, a.pk)):
        latest[att.name] = att
    return latest


def _template_names(trail, template_name: str) -> tuple[list[str], list[str]]:
    template = trail.effective_template() or {}
    trail_names = [item.get("name") for item in template.get("trail", []) if isinstance(item, dict)]
    artifact_names: list[str] = []
    for artifact in template.get("artifacts", []):
        if isinstance(artifact, dict) and artifact.get("name") == template_name:
            artifact_names = [item.get("name") for item in artifact.get("attestations", []) if isinstance(item, dict)]
    return [n for n in trail_names if n], [n for n in artifact_names if n]


def gather_facts(org, artifacts: list[dict]) -> dict[tuple[str, str], ArtifactFacts]:
    """``[{name, fingerprint}]`` → ``{(name, fingerprint): ArtifactFacts}``."""
    from audit.evidence.models import Artifact, Attestation

    fingerprints = {a["fingerprint"] for a in artifacts if a.get("fingerprint")}
    reported = (
        Artifact.objects.for_org(org).filter(fingerprint__in=fingerprints)
        .select_related("flow", "trail").order_by("fingerprint", "-created_at", "-id")
    ) if fingerprints else []
    newest: dict[str, object] = {}
    for row in reported:
        newest.setdefault(row.fingerprint, row)
    trail_ids = {row.trail_id for row in newest.values() if row.trail_id}
    by_trail: dict[int, list] = defaultdict(list)
    if trail_ids:
        for att in Attestation.objects.for_org(org).filter(trail_id__in=trail_ids).select_related(
                "custom_type", "artifact"):
            by_trail[att.trail_id].append(att)
    result = {}
    for item in artifacts:
        fingerprint = item.get("fingerprint") or ""
        facts = ArtifactFacts(fingerprint=fingerprint, name=item["name"])
        row = newest.get(fingerprint)
        if row is not None:
            facts.flow_name = row.flow.name
            facts.flow_tags = dict(row.flow.tags or {})
            facts.provenance = {
                "flow": row.flow.name,
                "trail": row.trail.name if row.trail_id else "",
                "commit": row.git_commit,
                "commit_url": row.commit_url,
                "html_url": f"{settings.CSM_BASE_URL}/o/{org.slug}/flows/{row.flow.name}",
            }
            if row.trail_id:
                _trail_facts(facts, row, by_trail[row.trail_id])
        result[(item["name"], fingerprint)] = facts
    return result


def _trail_facts(facts: ArtifactFacts, row, trail_attestations: list) -> None:
    """Attestations that count for this artifact, and whether it is compliant in its trail: every
    current attestation compliant and every attestation its template expects present."""
    facts.trail_name = row.trail.name
    own = [a for a in trail_attestations
           if (a.artifact_id and a.artifact.fingerprint == row.fingerprint) or a.artifact_fingerprint == row.fingerprint
           or (not a.artifact_id and not a.artifact_fingerprint and row.template_name
               and a.target_artifact == row.template_name)]
    trail_level = [a for a in trail_attestations if not a.artifact_id and not a.artifact_fingerprint
                   and not a.target_artifact]
    current_own = _latest_by_name(own)
    current_trail = _latest_by_name(trail_level)
    facts.attestations = [
        {"name": att.name, "type": _policy_type(att), "compliant": bool(att.is_compliant), "scope": scope}
        for scope, group in (("artifact", current_own), ("trail", current_trail))
        for att in group.values()
    ]
    expected_trail, expected_artifact = _template_names(row.trail, row.template_name)
    missing = [n for n in expected_trail if n not in current_trail] + [
        n for n in expected_artifact if n not in current_own]
    facts.trail_compliant = not missing and all(a["compliant"] for a in facts.attestations)
