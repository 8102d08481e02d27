"""What the page of one attestation shows, read once per request (a fixed number of queries):

- its standing: whether it is the attestation that counts for its name in its scope (trail, or artifact),
  whether an override applies to it (who approved it, why), or which newer attestation superseded it;
- its reporter (``involvement.reporters``) and its evidence files;
- per type: JUnit failing / erroring / skipped tests, SARIF findings grouped by severity, the SBOM's
  components (server-side search, paged), pull requests, Jira issues (linked), the SonarQube quality gate
  (status, conditions, link to the Sonar project), VEX statements (filtered, paged, each with what it
  covers of the attestation's artifact), custom and generic data. Jira and Sonar results are
  shown from ``results`` as their parsers (``evidence/parsers/jira.py``, ``sonar.py``) shaped them.
"""

import json

from django.core.paginator import Paginator
from django.db.models import Q

from evidence import involvement, selectors
from evidence.choices import SEVERITY_RANK, AttestationType, Severity
from evidence.models import Attestation, SbomComponent
from evidence.parsers.vex import product_scope, statement_scope

COMPONENTS_PER_PAGE = 50
STATEMENTS_PER_PAGE = 50
MAX_QUERY = 200
PREVIEW_LINES = 12
PREVIEW_CHARS = 1200


def _scope(org, attestation: Attestation):
    """The attestations that compete with ``attestation`` for its name (same trail, same subject)."""
    same = Attestation.objects.for_org(org).filter(trail_id=attestation.trail_id, name=attestation.name)
    if attestation.artifact_id:
        return same.filter(artifact_id=attestation.artifact_id)
    if attestation.artifact_fingerprint:
        return same.filter(artifact_fingerprint=attestation.artifact_fingerprint)
    if attestation.target_artifact:
        return same.filter(artifact__isnull=True, target_artifact=attestation.target_artifact,
                           git_commit=attestation.git_commit)
    return same.filter(artifact__isnull=True, target_artifact="", artifact_fingerprint="")


def standing(org, attestation: Attestation) -> dict:
    """``{"counts": bool, "effective_id", "effective_compliant", "overridden", "overrides": [...],
    "applied_override"}``: how this attestation stands for compliance. One query."""
    if attestation.type == AttestationType.OVERRIDE:
        return {"counts": False, "effective_id": None, "effective_compliant": None, "overridden": False,
                "overrides": [], "applied_override": None}
    scope = list(_scope(org, attestation).select_related("custom_type").order_by("created_at", "id"))
    entries = selectors.evaluate([], scope)["attestations"]
    entry = next((e for e in entries if e["name"] == attestation.name), None)
    overrides = [a for a in scope if a.type == AttestationType.OVERRIDE
                 and (a.results or {}).get("overrides") == attestation.pk]
    counts = entry is not None and entry["id"] == attestation.pk
    applied = overrides[-1] if counts and entry["overridden"] and overrides else None
    return {"counts": counts, "effective_id": entry["id"] if entry else None,
            "effective_compliant": entry["effective_compliant"] if entry else None,
            "overridden": applied is not None, "overrides": overrides, "applied_override": applied}


def _split(text: str) -> tuple[str, str]:
    """(the first ``PREVIEW_LINES`` lines, at most ``PREVIEW_CHARS`` characters; the rest)."""
    cut = 0
    for _ in range(PREVIEW_LINES):
        cut = text.find("\n", cut) + 1
        if cut == 0:
            cut = len(text)
            break
    cut = min(cut, PREVIEW_CHARS)
    return text[:cut], text[cut:]


def junit_view(results: dict) -> dict:
    failed = []
    for case in results.get("failed_cases") or []:
        preview, rest = _split(case.get("text", ""))
        failed.append({**case, "preview": preview, "rest": rest})
    return {"has_details": "failed_cases" in results, "failed": failed,
            "failed_omitted": results.get("failed_cases_omitted", 0), "skipped": results.get("skipped_cases") or [],
            "skipped_omitted": results.get("skipped_cases_omitted", 0), "limits": results.get("case_limits") or {},
            "totals": results.get("totals") or {}, "suites": results.get("suites") or [],
            "source": results.get("source", "")}


def sarif_view(results: dict) -> dict:
    listed = results.get("listed") or []
    groups = []
    for severity in sorted(Severity, key=lambda s: -SEVERITY_RANK[s]):
        findings = [item for item in listed if item.get("severity") == severity]
        if findings:
            groups.append({"severity": severity.value, "label": severity.label, "findings": findings})
    has_details = bool(listed) and "rule_name" in listed[0]
    return {"groups": groups, "findings": results.get("findings") or {}, "threshold": results.get("threshold", ""),
            "tools": results.get("tools") or [], "omitted": results.get("listed_omitted", 0),
            "limit": results.get("listed_limit"), "source": results.get("source", ""), "has_details": has_details,
            "listed_count": len(listed), "total": sum((results.get("findings") or {}).values())}


def components_page(org, attestation: Attestation, query: str, page_number) -> dict:
    query = (query or "").strip()[:MAX_QUERY]
    components = SbomComponent.objects.for_org(org).filter(attestation=attestation)
    if query:
        components = components.filter(Q(name__icontains=query) | Q(purl__icontains=query)
                                       | Q(version__icontains=query) | Q(licenses__icontains=query))
    page = Paginator(components.order_by("name", "version", "id"), COMPONENTS_PER_PAGE).get_page(page_number)
    return {"page": page, "query": query}


def _covers(scope: list[str] | None) -> str:
    if scope is None:
        return "none"
    return "components" if scope else "artifact"


def vex_view(attestation: Attestation, query: str, status: str, page_number) -> dict:
    """The statements of a VEX attestation, filtered by id (``query``) and status, paged; each with what it
    covers of the attestation's artifact (``covers``: artifact, components, none) as ``vulns.vex`` applies it."""
    results = attestation.results or {}
    fingerprint = attestation.artifact_fingerprint or (attestation.artifact.fingerprint if attestation.artifact_id
                                                       else "")
    query = (query or "").strip()[:MAX_QUERY]
    statements = results.get("statements") or []
    if query:
        needle = query.lower()
        statements = [s for s in statements
                      if needle in s.get("vulnerability", "").lower()
                      or any(needle in alias.lower() for alias in s.get("aliases") or [])]
    if status:
        statements = [s for s in statements if s.get("status") == status]
    page = Paginator(statements, STATEMENTS_PER_PAGE).get_page(page_number)
    rows = []
    for statement in page.object_list:
        scope = statement_scope(statement, fingerprint) if fingerprint else None
        products = [{**product, "covers": _covers(product_scope(product, fingerprint)) if fingerprint else "none"}
                    for product in statement.get("products") or []]
        rows.append({**statement, "products": products, "covers": _covers(scope), "components": scope or []})
    return {"page": page, "rows": rows, "query": query, "status": status, "fingerprint": fingerprint,
            "documents": results.get("documents") or [], "counts": results.get("status_counts") or {},
            "total": results.get("statement_count", 0), "unanalysed": results.get("unanalysed", 0),
            "statuses": ["not_affected", "affected", "fixed", "under_investigation"]}


def _json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def context(org, attestation: Attestation, params) -> dict:
    """The template context of the attestation page. ``params`` is the request's GET."""
    results = attestation.results or {}
    out = {
        "attestation": attestation,
        "standing": standing(org, attestation),
        "reporter": involvement.reporters(org, [attestation])[attestation.pk],
        "files": list(attestation.evidence_links.all()),
        "commit": attestation.git_commit or attestation.trail.git_commit,
        "commit_info": attestation.git_commit_info or attestation.trail.git_commit_info or {},
        "user_data_json": _json(attestation.user_data) if attestation.user_data not in ({}, [], None) else "",
        "results": results,
    }
    if attestation.artifact_id and attestation.artifact.git_commit == out["commit"]:
        out["commit_url"] = attestation.artifact.commit_url
    if attestation.type == AttestationType.OVERRIDE:
        target_id = results.get("overrides")
        out["overridden"] = (Attestation.objects.for_org(org).filter(pk=target_id).select_related("flow", "trail")
                             .first() if isinstance(target_id, int) else None)
    elif attestation.type == AttestationType.JUNIT:
        out["junit"] = junit_view(results)
    elif attestation.type in (AttestationType.SARIF, AttestationType.SNYK):
        out["sarif"] = sarif_view(results)
    elif attestation.type == AttestationType.SBOM:
        out["sbom"] = components_page(org, attestation, params.get("q", ""), params.get("page"))
    elif attestation.type == AttestationType.VEX:
        out["vex"] = vex_view(attestation, params.get("q", ""), params.get("status", ""), params.get("page"))
    elif attestation.type == AttestationType.CUSTOM:
        out["data_json"] = _json((attestation.summary or {}).get("attestation_data"))
        judged_by = attestation.custom_type_version if attestation.custom_type_version_id else attestation.custom_type
        out["schema_json"] = _json(judged_by.schema) if judged_by is not None else ""
    return out
