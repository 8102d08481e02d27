"""Web pages of the evidence vault: flows (template, latest trails), a trail (attestations, evidence,
compliance), an attestation (its standing, reporter, evidence files and per-type details), an artifact
(provenance, who was involved, attestations with parsed results, evidence downloads, where it runs and
ran), an evidence file (hash, size, type, uploader) and its download; custom attestation types (their
versions, schema, expression rule, jq rules and summary), defined, versioned and archived here too; and the
org's controls: the list (with a create form for ``controls.manage``) and a control's page (its decisions
across flows and trails, the latest per trail; edit, archive and unarchive for ``controls.manage``).
Writes: a flow's archive / unarchive / rename (``flow_manage``, ``evidence.manage``), custom types,
controls and tags."""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from csm.web import add_service_error, org_view, page_sections
from evidence import attestation_page, controls, involvement, lifecycle, repos, selectors, services, storage, tags
from evidence.forms import ControlForm, CustomTypeForm
from evidence.models import Artifact, Attestation, CustomAttestationType, EvidenceFile, Flow, Repository, Trail
from evidence.responses import attachment
from evidence.retention import retention_message
from tenants.access import require_permission

PAGE = 50


def _attestations(org, **filters):
    return (Attestation.objects.for_org(org).filter(**filters)
            .select_related("flow", "trail", "artifact", "custom_type", "leaf")
            .prefetch_related("evidence_links__evidence_file"))


@org_view("evidence.view")
def flow_list(request):
    show_archived = request.GET.get("archived") == "1"
    flows = Flow.objects.for_org(request.org).filter(archived=show_archived).prefetch_related("trails")
    return render(request, "evidence/flow_list.html", {"flows": flows, "show_archived": show_archived})


def _flow(request, name: str) -> Flow:
    flow = selectors.flow_named(request.org, name)
    if flow is None:
        raise Http404(f"No flow named {name!r}.")
    return flow


@org_view("evidence.view")
def flow_detail(request, flow):
    name = flow
    flow = _flow(request, name)
    if flow.name != name:  # a former name: the page lives under the current one
        return redirect("flow-detail", request.org.slug, flow.name)
    trails = [(trail, selectors.trail_compliance(trail)) for trail in flow.trails.all()[:PAGE]]
    return render(request, "evidence/flow_detail.html", {
        "flow": flow, "trails": trails, "can_manage": request.org_access.can("evidence.manage"),
        "former_names": flow.former_names.filter(released_at=None).order_by("renamed_at"),
        "repositories": repos.repositories_of_flow(flow)})


@org_view({"POST": "evidence.manage"})
def flow_manage(request, flow):
    """The flow page's Archive / Unarchive / Rename buttons (the API's services, audited the same way)."""
    flow = _flow(request, flow)
    ctx = AuditContext.from_request(request)
    action = request.POST.get("action")
    try:
        if action in ("archive", "unarchive"):
            flow = lifecycle.set_flow_archived(ctx, request.org, flow, action == "archive")
            messages.success(request, f"Flow {flow.name} {action}d.")
        elif action == "rename":
            old = flow.name
            flow = lifecycle.rename_flow(ctx, request.org, flow, request.POST.get("new_name", ""))
            messages.success(request, f"Flow {old} renamed to {flow.name}; the old name still leads here.")
        else:
            messages.error(request, "Unknown action.")
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect("flow-detail", request.org.slug, flow.name)


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
        "sections": page_sections(request, "artifact", fingerprint=fingerprint),
    })


@org_view("evidence.view")
def kosli_trail_link(request, flow, trail):
    """Where a kosli-style web link lands (``kosli get trail --output markdown`` links each attestation as
    ``{host}/{org}/flows/{flow}/trails/{trail}?attestation_id={id}``, cmd/kosli/getTrail.go): a redirect to
    csm's trail page, or to the attestation's page when the id is one of csm's. Access is checked here as on
    the pages (an outsider gets the same 404 as for any of the org's pages)."""
    org = request.org.slug
    attestation_id = request.GET.get("attestation_id", "")
    if attestation_id.isascii() and attestation_id.isdigit() and len(attestation_id) <= 18:
        return redirect("attestation-detail", org, flow, trail, int(attestation_id))
    return redirect("trail-detail", org, flow, trail)


@org_view("evidence.view")
def attestation_detail(request, flow, trail, attestation_id):
    attestation = get_object_or_404(_attestations(request.org, flow__name=flow, trail__name=trail),
                                    pk=attestation_id)
    return render(request, "evidence/attestation_detail.html",
                  attestation_page.context(request.org, attestation, request.GET))


@org_view("evidence.view")
def evidence_detail(request, sha256):
    evidence = get_object_or_404(EvidenceFile.objects.for_org(request.org), sha256=sha256)
    return render(request, "evidence/evidence_detail.html", {"evidence": evidence, "links": _links(evidence)})


def _links(evidence):
    return evidence.links.select_related("attestation__flow", "attestation__trail")[:PAGE]


@org_view("evidence.view")
def evidence_download(request, sha256):
    evidence = get_object_or_404(EvidenceFile.objects.for_org(request.org), sha256=sha256)
    if evidence.dropped_at is not None:
        return render(request, "evidence/evidence_detail.html", {"evidence": evidence, "links": _links(evidence),
                                                                 "gone": retention_message(evidence)}, status=410)
    try:
        handle = storage.open_verified(evidence)
    except storage.EvidenceCorrupted as error:
        return HttpResponseServerError(str(error), content_type="text/plain")
    record_event(AuditContext.from_request(request), request.org, AuditAction.EVIDENCE_DOWNLOADED, evidence,
                 after={"sha256": evidence.sha256, "via": "web"})
    return attachment(handle, evidence.original_name or evidence.sha256, evidence.size)


@org_view({"GET": "evidence.view", "POST": "controls.manage"})
def control_list(request):
    """GET: the org's controls (``?archived=1``: the archived ones; ``?q=``: name or identifier contains)
    and, for ``controls.manage``, the create form. POST: create one."""
    form = ControlForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            control = controls.create_control(AuditContext.from_request(request), request.org, form.payload())
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Control {control.identifier} created.")
            return redirect("control-detail", request.org.slug, control.identifier)
    archived = request.GET.get("archived") == "1"
    query = request.GET.get("q", "")[:200]
    listed = list(controls.list_controls(request.org, search=query, archived=archived)[:500])
    counts = controls.decision_counts(request.org, listed)
    for control in listed:
        control.decision_counts = counts.get(control.pk, {"total": 0, "compliant": 0, "non_compliant": 0})
    return render(request, "evidence/control_list.html", {
        "controls": listed, "archived": archived,
        "q": query, "form": form, "can_manage": request.org_access.can("controls.manage")})


def _control(request, identifier):
    try:
        return controls.get_control(request.org, identifier)
    except ServiceError as error:
        raise Http404(error.message) from None


@org_view({"GET": "evidence.view", "POST": "controls.manage"})
def control_detail(request, identifier):
    """GET: the control, its decisions across flows and trails (compliant / non-compliant counts, the
    latest decision per trail, the newest decisions) and, for ``controls.manage``, the edit form. POST:
    save the edit form."""
    control = _control(request, identifier)
    form = ControlForm(request.POST or None, control=control)
    if request.method == "POST" and form.is_valid():
        try:
            controls.update_control(AuditContext.from_request(request), request.org, control.identifier,
                                    form.payload())
        except ServiceError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Control saved.")
            return redirect("control-detail", request.org.slug, control.identifier)
    return render(request, "evidence/control_detail.html", {
        "control": control, "decisions": controls.decisions_of(control), "form": form,
        "can_manage": request.org_access.can("controls.manage")})


def _set_archived(request, identifier, archived: bool):
    control = _control(request, identifier)
    change = controls.archive_control if archived else controls.unarchive_control
    change(AuditContext.from_request(request), request.org, control.identifier)
    messages.success(request, f"Control {control.identifier} {'archived' if archived else 'unarchived'}.")
    return redirect("control-detail", request.org.slug, control.identifier)


@org_view("controls.manage")
@require_POST
def control_archive(request, identifier):
    return _set_archived(request, identifier, True)


@org_view("controls.manage")
@require_POST
def control_unarchive(request, identifier):
    return _set_archived(request, identifier, False)


# --- custom attestation types ------------------------------------------------------------------------


@org_view("evidence.view")
def attestation_type_list(request):
    types = CustomAttestationType.objects.for_org(request.org).prefetch_related("versions")
    return render(request, "evidence/attestation_type_list.html", {
        "types": types, "can_manage": request.org_access.can("evidence.override")})


def _save_type(request, form) -> CustomAttestationType | None:
    try:
        custom, added = services.create_custom_type(AuditContext.from_request(request), request.org,
                                                    form.definition())
    except ServiceError as error:
        add_service_error(form, error)
        return None
    if added:
        messages.success(request, f"Attestation type {custom.name} saved as version "
                                  f"{custom.latest_version().version}.")
    else:
        messages.info(request, f"Attestation type {custom.name} is unchanged: no new version.")
    return custom


@org_view("evidence.override")
def attestation_type_new(request):
    form = CustomTypeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        custom = _save_type(request, form)
        if custom is not None:
            return redirect("attestation-type-detail", request.org.slug, custom.name)
    return render(request, "evidence/attestation_type_new.html", {"form": form})


@org_view({"GET": "evidence.view", "POST": "evidence.override"})
def attestation_type_detail(request, name):
    """GET: the type and every version (schema, rule, jq rules, summary). POST: a new version."""
    custom = get_object_or_404(CustomAttestationType.objects.for_org(request.org), name=name)
    form = None
    status = 200
    can_manage = request.org_access.can("evidence.override")
    if request.method == "POST":
        form = CustomTypeForm(request.POST, fixed_name=custom.name)
        if form.is_valid() and _save_type(request, form) is not None:
            return redirect("attestation-type-detail", request.org.slug, custom.name)
        status = 400
    if form is None and can_manage and not custom.archived:
        form = CustomTypeForm(initial=CustomTypeForm.initial_for(custom), fixed_name=custom.name)
    versions = list(custom.versions.order_by("-version"))
    for version in versions:
        version.schema_json = json.dumps(version.schema, indent=2)
    used = Attestation.objects.for_org(request.org).filter(custom_type=custom).count()
    return render(request, "evidence/attestation_type_detail.html", {
        "custom": custom, "versions": versions, "form": form, "can_manage": can_manage, "used": used,
    }, status=status)


@org_view("evidence.override")
@require_POST
def attestation_type_archive(request, name):
    custom = get_object_or_404(CustomAttestationType.objects.for_org(request.org), name=name)
    services.archive_custom_type(AuditContext.from_request(request), request.org, custom)
    messages.success(request, f"Attestation type {custom.name} is archived: new attestations cannot use it.")
    return redirect("attestation-type-detail", request.org.slug, custom.name)
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
