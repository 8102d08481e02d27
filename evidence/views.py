"""Web pages of the evidence vault: flows (template, latest trails), a trail (attestations, evidence,
compliance), an attestation (its standing, reporter, evidence files and per-type details), an artifact
(provenance, who was involved, attestations with parsed results, evidence downloads, where it runs and
ran), an evidence file (hash, size, type, uploader) and its download; custom attestation types (their
versions, schema, expression rule, jq rules and summary), defined, versioned and archived here too."""

import json

from django.contrib import messages
from django.http import HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from csm.web import add_service_error, org_view
from evidence import attestation_page, involvement, selectors, services, storage
from evidence.forms import CustomTypeForm
from evidence.models import Artifact, Attestation, CustomAttestationType, EvidenceFile, Flow, Trail
from evidence.responses import attachment

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
    return render(request, "evidence/flow_detail.html", {"flow": flow, "trails": trails})


@org_view("evidence.view")
def trail_detail(request, flow, trail):
    flow = get_object_or_404(Flow.objects.for_org(request.org), name=flow)
    trail = get_object_or_404(Trail.objects.for_org(request.org), flow=flow, name=trail)
    return render(request, "evidence/trail_detail.html", {
        "flow": flow, "trail": trail, "compliance": selectors.trail_compliance(trail),
        "attestations": _attestations(request.org, trail=trail),
        "artifacts": trail.artifacts.select_related("flow"),
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
