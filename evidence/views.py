"""Web pages of the evidence vault: flows (template, latest trails), a trail (attestations, evidence,
compliance), an attestation (its standing, reporter, evidence files and per-type details), an artifact
(provenance, who was involved, attestations with parsed results, evidence downloads, where it runs and
ran), an evidence file (hash, size, type, uploader) and its download. Read-only."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from csm.web import org_view
from evidence import attestation_page, involvement, repos, selectors, storage, tags
from evidence.models import Artifact, Attestation, EvidenceFile, Flow, Repository, Trail
from evidence.responses import attachment
from tenants.access import require_permission

PAGE = 50


def _attestations(org, **filters):
    return (Attestation.objects.for_org(org).filter(**filters)
            .select_related("flow", "trail", "artifact", "custom_type", "leaf")
            .prefetch_related("evidence_links__evidence_file"))


@org_view("evidence.view")
def flow_list(request):
    flows = Flow.objects.for_org(request.org).prefetch_related("trails")
    return render(request, "evidence/flow_list.html", {"flows": flows})


@org_view("evidence.view")
def flow_detail(request, flow):
    flow = get_object_or_404(Flow.objects.for_org(request.org), name=flow)
    trails = [(trail, selectors.trail_compliance(trail)) for trail in flow.trails.all()[:PAGE]]
    return render(request, "evidence/flow_detail.html", {"flow": flow, "trails": trails,
                                                         "repositories": repos.repositories_of_flow(flow)})


@org_view("evidence.view")
def trail_detail(request, flow, trail):
    flow = get_object_or_404(Flow.objects.for_org(request.org), name=flow)
    trail = get_object_or_404(Trail.objects.for_org(request.org), flow=flow, name=trail)
    return render(request, "evidence/trail_detail.html", {
        "flow": flow, "trail": trail, "compliance": selectors.trail_compliance(trail),
        "attestations": _attestations(request.org, trail=trail),
        "artifacts": trail.artifacts.select_related("flow"),
        "repositories": repos.repositories_of(request.org, trail=trail),
    })


@org_view("evidence.view")
def artifact_detail(request, fingerprint):
    records = list(Artifact.objects.for_org(request.org).filter(fingerprint=fingerprint)
                   .select_related("flow", "trail", "leaf"))
    compliance = selectors.artifact_compliance(request.org, fingerprint)
    attestations = list(_attestations(request.org, artifact__in=records)) if records else []
    sboms = [a for a in attestations if a.type == "sbom"]  # newest first: the latest SBOM's components
    components = list(sboms[0].components.all()[:200]) if sboms else []
    running = selectors.where_it_runs(request.org, fingerprint)
    names = list(dict.fromkeys([r.template_name or r.filename for r in records if r.template_name or r.filename]
                               + [name for run in running for name in run["names"]]))
    return render(request, "evidence/artifact_detail.html", {
        "fingerprint": fingerprint, "records": records, "compliance": compliance, "attestations": attestations,
        "components": components, "running": running, "names": names,
        "repositories": repos.repositories_of(request.org, fingerprint=fingerprint),
        "involved": involvement.involved(request.org, fingerprint, records, attestations),
    })


@org_view("evidence.view")
def attestation_detail(request, flow, trail, attestation_id):
    attestation = get_object_or_404(_attestations(request.org, flow__name=flow, trail__name=trail),
                                    pk=attestation_id)
    return render(request, "evidence/attestation_detail.html",
                  attestation_page.context(request.org, attestation, request.GET))


@org_view("evidence.view")
def evidence_detail(request, sha256):
    evidence = get_object_or_404(EvidenceFile.objects.for_org(request.org), sha256=sha256)
    links = evidence.links.select_related("attestation__flow", "attestation__trail")[:PAGE]
    return render(request, "evidence/evidence_detail.html", {"evidence": evidence, "links": links})


@org_view("evidence.view")
def evidence_download(request, sha256):
    evidence = get_object_or_404(EvidenceFile.objects.for_org(request.org), sha256=sha256)
    try:
        handle = storage.open_verified(evidence)
    except storage.EvidenceCorrupted as error:
        return HttpResponseServerError(str(error), content_type="text/plain")
    record_event(AuditContext.from_request(request), request.org, AuditAction.EVIDENCE_DOWNLOADED, evidence,
                 after={"sha256": evidence.sha256, "via": "web"})
    return attachment(handle, evidence.original_name or evidence.sha256, evidence.size)


@org_view("evidence.view")
def repo_list(request):
    """The org's repositories (learned from the provenance of trails, artifacts and attestations), filtered
    by name substring and provider."""
    query = request.GET.get("q", "")[:200]
    provider = request.GET.get("provider", "")[:40]
    repositories = Repository.objects.for_org(request.org)
    providers = sorted(set(repositories.values_list("provider", flat=True)))
    if query:
        repositories = repositories.filter(name__icontains=query)
    if provider:
        repositories = repositories.filter(provider=provider)
    page = Paginator(repositories.order_by("name", "provider", "id"), PAGE).get_page(request.GET.get("page"))
    return render(request, "evidence/repo_list.html", {"page": page, "q": query, "provider": provider,
                                                       "providers": providers})


@org_view("evidence.view")
def repo_detail(request, repo_id):
    repo = get_object_or_404(Repository.objects.for_org(request.org), pk=repo_id)
    return render(request, "evidence/repo_detail.html", {"repo": repo, **repos.repository_overview(repo)})


@org_view({"POST": "org.view"})  # the tagged type's own permission is checked below, once the type is known
def tags_edit(request, kind, identifier):
    """The tag form of a flow's, environment's or repository's page: ``key`` + ``value`` sets a tag,
    ``remove`` (a key) removes one. Back to the object's page with the outcome."""
    try:
        spec = tags.tag_type(kind)
    except ServiceError:
        raise Http404("no such taggable type") from None
    require_permission(request, request.org_access, spec.permission)
    try:
        target = tags.find(request.org, spec.name, identifier)
    except ServiceError:
        raise Http404(f"no such {spec.title}") from None
    key, value, remove = (request.POST.get(name, "").strip() for name in ("key", "value", "remove"))
    back = spec.page(request.org.slug, target) if spec.page else reverse("org-home", args=[request.org.slug])
    try:
        if remove:
            tags.change_tags(AuditContext.from_request(request), request.org, spec.name, identifier, {}, [remove])
            messages.success(request, f"Tag {remove} removed.")
        else:
            if not key:
                raise ServiceError("Give the tag a key.", "key")
            tags.change_tags(AuditContext.from_request(request), request.org, spec.name, identifier, {key: value})
            messages.success(request, f"Tag {key}={value} set.")
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect(back)
