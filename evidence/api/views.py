"""Evidence vault API. Paths the kosli CLI calls are served exactly as it calls them (see urls.py); each
view resolves the org (404 for other orgs), checks its permission, hands the payload to a service and
shapes the answer."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.api.base import OrgScopedAPIView, body_names
from csm.api.errors import ApiError, invalid
from csm.api.kosli import is_kosli_cli
from csm.api.parsers import load_body_json
from csm.api.schema import JSON_LIST
from evidence import archives, packages, selectors, services
from evidence.api import kosli_shapes, uploads
from evidence.api.serializers import (
    artifact_dict,
    attestation_dict,
    custom_type_dict,
    evidence_dict,
    flow_dict,
    trail_dict,
)
from evidence.choices import AttestationType
from evidence.filters import MAX_LIST, ArtifactFilterSet, AttestationFilterSet, FlowFilterSet, TrailFilterSet
from evidence.models import Artifact, Attestation, CustomAttestationType, EvidenceFile, Flow, Trail
from evidence.responses import attachment
from evidence.retention import retention_message
from evidence.storage import EvidenceCorrupted
from tenants.access import require_permission

READ_OR_REPORT = {"GET": "evidence.view", "default": "evidence.report"}
READ = extend_schema(responses=OpenApiTypes.OBJECT)
WRITE = extend_schema(request={"application/json": OpenApiTypes.OBJECT, "multipart/form-data": OpenApiTypes.OBJECT},
                      responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
FILE = extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
# The kosli lists that answer a plain JSON array.
LIST = extend_schema(responses={200: JSON_LIST})
PACKAGE = extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
# An evidence file's bytes may be gone: removed by the org's retention (docs/operations.md, "Retention").
EVIDENCE_FILE = extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                                         410: OpenApiTypes.OBJECT})


def corrupted(error: EvidenceCorrupted) -> ApiError:
    return ApiError(500, "evidence_corrupted", str(error))


def removed_by_retention(evidence) -> ApiError:
    return ApiError(410, "gone", retention_message(evidence))


def payload(request) -> dict:
    """The kosli ``data_json`` multipart field, or the JSON body itself (already bounded and known to be an
    object by csm.api.parsers.BoundedJSONParser). ``data_json`` goes through the same bounded loader."""
    data = request.data
    if not hasattr(data, "get"):  # a view that accepts any top-level value; never for these endpoints
        raise invalid("The body must be a JSON object", {"body": ["must be a JSON object"]})
    if "data_json" in data:
        raw = data["data_json"]
        if hasattr(raw, "read"):
            raw = raw.read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        if isinstance(raw, (str, bytes)):
            return load_body_json(raw, "data_json")
        data = raw
    if hasattr(data, "dict") and not isinstance(data, dict):
        data = data.dict()
    if not isinstance(data, dict):
        raise invalid("data_json must be a JSON object", {"data_json": ["must be a JSON object"]})
    return dict(data)


def template_file(request) -> str | None:
    """The uploaded kosli YAML template as text; its size, depth and aliases are bounded where it is parsed
    (``services.parse_template``), with the same limit as a template sent in the JSON body."""
    upload = request.FILES.get("template_file") if hasattr(request, "FILES") else None
    if upload is None:
        return None
    limit = settings.CSM_TEMPLATE_MAX_BYTES
    if upload.size > limit:
        message = f"template_file is larger than the limit of {limit} bytes"
        raise ApiError(413, "too_large", message, {"template_file": [message]})
    try:
        return upload.read().decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("template_file is not UTF-8 text", {"template_file": ["not UTF-8"]}) from None


class EvidenceView(OrgScopedAPIView):
    permission = READ_OR_REPORT
    error_statuses = (409, 413)

    def flow(self, name) -> Flow:
        """The flow named so now or before a rename (``selectors.flow_or_404``: kosli's 404 words)."""
        return selectors.flow_or_404(self.org, name)

    def trail(self, flow, name) -> Trail:
        return get_object_or_404(Trail.objects.for_org(self.org).select_related("flow"), flow=flow, name=name)

    def ctx(self):
        return AuditContext.from_request(self.request)


class FlowNamedInBody:
    """A PUT names the flow in its body (``name``): a token limited to flows creates only those."""

    def scope_names(self, request, kwargs):
        environments, flows = super().scope_names(request, kwargs)
        if request.method == "PUT":
            flows += body_names(payload(request), "name")
            data_json = request.data.get("data_json") if hasattr(request.data, "get") else None
            if hasattr(data_json, "seek"):  # an uploaded data_json file: the view reads it again
                data_json.seek(0)
        return environments, flows


class FlowsView(FlowNamedInBody, EvidenceView):
    """``GET`` the org's flows; ``PUT`` creates or updates one (kosli ``create flow``, legacy JSON body
    ``{name, description, visibility, template: [names]}`` or csm's ``{template: {trail, artifacts}}``)."""

    @LIST
    def get(self, request, org):
        flows = self.limit_to_token_scope(Flow.objects.for_org(self.org), flow_field="name")
        flows = FlowFilterSet(request.query_params, queryset=flows).qs_or_400()
        return Response([flow_dict(flow) for flow in flows])

    @WRITE
    def put(self, request, org):
        flow, created = services.upsert_flow(self.ctx(), self.org, payload(request))
        return Response(flow_dict(flow), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class FlowTemplateFileView(FlowNamedInBody, EvidenceView):
    """``PUT /api/v2/flows/{org}/template_file``: multipart ``data_json`` + ``template_file`` (kosli YAML)."""

    @WRITE
    def put(self, request, org):
        flow, created = services.upsert_flow(self.ctx(), self.org, payload(request),
                                             template_yaml=template_file(request) or "")
        return Response(flow_dict(flow), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class FlowDetailView(EvidenceView):
    @READ
    def get(self, request, org, flow):
        flow = self.flow(flow)
        data = flow_dict(flow)
        if is_kosli_cli(request) and flow.template_yaml:
            # `kosli get flow` (getFlow.go printFlowAsTable) prints the template it uploaded, the YAML text
            data["template"] = flow.template_yaml
        return Response(data)


class TrailsView(EvidenceView):
    """``GET`` a flow's trails; ``PUT`` begins or updates one (kosli ``begin trail``: multipart ``data_json``
    with an optional ``template_file``, or a JSON body)."""

    @LIST
    def get(self, request, org, flow):
        flow = self.flow(flow)
        trails = TrailFilterSet(request.query_params, queryset=Trail.objects.for_org(self.org).filter(flow=flow)
                                .select_related("flow")).qs_or_400()
        return Response([trail_dict(trail) for trail in trails])

    @WRITE
    def put(self, request, org, flow):
        flow = self.flow(flow)
        trail, created = services.begin_trail(self.ctx(), self.org, flow, payload(request),
                                              template_yaml=template_file(request))
        return Response(trail_dict(trail), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TrailDetailView(EvidenceView):
    @READ
    def get(self, request, org, flow, trail):
        trail = self.trail(self.flow(flow), trail)
        compliance = selectors.trail_compliance(trail)
        data = trail_dict(trail, compliance)
        data.update(kosli_shapes.trail_fields(request, self.org, trail, compliance, is_kosli_cli(request)))
        return Response(data)


class ArtifactsView(EvidenceView):
    """``GET`` a flow's artifacts; ``POST`` reports one (kosli ``attest artifact``)."""

    @LIST
    def get(self, request, org, flow):
        flow = self.flow(flow)
        artifacts = ArtifactFilterSet(request.query_params, queryset=Artifact.objects.for_org(self.org)
                                      .filter(flow=flow).select_related("flow", "trail", "leaf")).qs_or_400()
        return Response([artifact_dict(artifact) for artifact in artifacts])

    @WRITE
    def post(self, request, org, flow):
        flow = self.flow(flow)
        artifact, created = services.report_artifact(self.ctx(), self.org, flow, payload(request))
        return Response(artifact_dict(artifact), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ArtifactView(EvidenceView):
    """``GET /api/v2/artifacts/{org}/{flow}/fingerprint/{sha}``: provenance, attestations (parsed
    results, evidence), compliance, and where the artifact runs now and ran before. ``sha`` may be a unique
    prefix of 5 to 64 hex digits (kosli ``get artifact flow@184c7``); ``?trail=`` keeps that trail's report
    only (``--trail``). The answer also carries the fields the kosli CLI prints
    (``evidence.api.kosli_shapes.artifact_fields``): ``created_at`` is epoch seconds there, csm's ISO time
    is ``created_at_iso``."""

    @READ
    def get(self, request, org, flow, fingerprint):
        flow = self.flow(flow)
        fingerprint = selectors.resolve_fingerprint(self.org, flow, fingerprint)
        return Response(artifact_answer(request, self.org, flow, fingerprint, request.query_params.get("trail")))


def artifact_answer(request, org, flow: Flow, fingerprint: str, trail: str | None) -> dict:
    """One artifact of ``flow`` as ``get artifact`` answers it (csm's fields and the kosli CLI's): every
    report of ``fingerprint`` in the flow (``trail``: that trail's only), its attestations, compliance and
    where it runs. 404 when the flow reported no such artifact (in that trail)."""
    records = Artifact.objects.for_org(org).filter(flow=flow, fingerprint=fingerprint)
    if trail:  # kosli get artifact --trail: that trail's report of it
        records = records.filter(trail__name=trail)
    records = list(records.select_related("flow", "trail", "leaf"))
    if not records:
        where = f" in trail {trail!r}" if trail else ""
        raise ApiError(404, "not_found", f"flow {flow.name!r} reported no artifact {fingerprint}{where}")
    attestations = list(Attestation.objects.for_org(org).filter(artifact__in=records)
                        .select_related("flow", "trail", "artifact", "custom_type", "leaf")
                        .prefetch_related("evidence_links__evidence_file__org",
                                          "evidence_links__evidence_file__leaf"))
    data = artifact_dict(records[0])
    data["reports"] = [artifact_dict(record) for record in records]
    data["attestations"] = [attestation_dict(a) for a in attestations]
    data["compliance"] = selectors.artifact_compliance(org, fingerprint)
    data["running"] = selectors.where_it_runs(org, fingerprint)
    data.update(kosli_shapes.artifact_fields(request, org, records[0], records, attestations,
                                             data["compliance"], data["running"], is_kosli_cli(request)))
    return data


class ArtifactLatestCommitView(EvidenceView):
    """``GET /api/v2/artifacts/{org}/{flow}/{fingerprint}/latest_commit[?branch=]`` (kosli ``report artifact``,
    reportArtifact.go ``latestCommit``, which fails the command on anything but 200): ``{"latest_commit":
    sha or null}``, the commit of the flow's previous artifact (``selectors.latest_commit``)."""

    @READ
    def get(self, request, org, flow, fingerprint):
        flow = self.flow(flow)
        branch = request.query_params.get("branch", "")
        return Response({"latest_commit": selectors.latest_commit(self.org, flow, fingerprint, branch)})


class AttestationsView(EvidenceView):
    """``POST /api/v2/attestations/{org}/{flow}/trail/{trail}/{type}`` (kosli ``attest <type>``):
    multipart ``data_json`` + optional ``attachment_file`` (tar.gz or a single file), or a JSON body (kosli
    ``attest override``). ``GET`` on the same path without the type lists the trail's attestations."""

    @LIST
    def get(self, request, org, flow, trail):
        trail = self.trail(self.flow(flow), trail)
        attestations = AttestationFilterSet(request.query_params, queryset=(
            Attestation.objects.for_org(self.org).filter(trail=trail)
            .select_related("flow", "trail", "artifact", "custom_type", "leaf")
            .prefetch_related("evidence_links__evidence_file__org", "evidence_links__evidence_file__leaf"))).qs_or_400()
        return Response([attestation_dict(a) for a in attestations])

    @WRITE
    def post(self, request, org, flow, trail, kind):
        if kind == AttestationType.OVERRIDE:
            require_permission(request, self.org_access, "evidence.override")
        uploads.install(request)
        flow = self.flow(flow)
        data = payload(request)
        upload = request.FILES.get("attachment_file")
        try:
            members = archives.read_attachment(upload) if upload is not None else []
        except archives.ArchiveError as error:
            raise ApiError(error.status, error.code, error.message, {"attachment_file": [error.message]}) from None
        try:
            attestation = services.create_attestation(
                self.ctx(), self.org, flow, trail, kind, data, members,
                can_override=self.org_access.can("evidence.override"))
        finally:
            for member in members:
                member.file.close()
        return Response(attestation_dict(attestation), status=status.HTTP_201_CREATED)


class AttestationDetailView(EvidenceView):
    @READ
    def get(self, request, org, pk):
        attestation = get_object_or_404(
            Attestation.objects.for_org(self.org).select_related("flow", "trail", "artifact", "custom_type", "leaf")
            .prefetch_related("evidence_links__evidence_file__org", "evidence_links__evidence_file__leaf"), pk=pk)
        return Response(attestation_dict(attestation))


class EvidenceFileView(EvidenceView):
    @READ
    def get(self, request, org, sha256):
        evidence = get_object_or_404(EvidenceFile.objects.for_org(self.org).select_related("org", "leaf"),
                                     sha256=sha256)
        data = evidence_dict(evidence)
        data["attestations"] = [{"id": link.attestation_id, "name": link.name}
                                for link in evidence.links.all()[:MAX_LIST]]
        return Response(data)


class EvidenceDownloadView(EvidenceView):
    """The stored bytes, re-verified against their SHA-256 first, as an attachment."""

    @EVIDENCE_FILE
    def get(self, request, org, sha256):
        evidence = get_object_or_404(EvidenceFile.objects.for_org(self.org), sha256=sha256)
        if evidence.dropped_at is not None:
            raise removed_by_retention(evidence)
        try:
            handle = services.storage.open_verified(evidence)
        except EvidenceCorrupted as error:
            raise corrupted(error) from None
        record_event(self.ctx(), self.org, AuditAction.EVIDENCE_DOWNLOADED, evidence,
                     after={"sha256": evidence.sha256, "via": "api"})
        return attachment(handle, evidence.original_name or evidence.sha256, evidence.size)


def _package_response(request, org, subject, attestations, artifacts=(), compliance=None):
    try:
        handle = packages.build_package(org, subject, attestations, artifacts, compliance)
    except EvidenceCorrupted as error:
        raise corrupted(error) from None
    name = f"audit-package-{subject['type']}-{subject['id']}.tar.gz"
    record_event(AuditContext.from_request(request), org, AuditAction.AUDIT_PACKAGE_DOWNLOADED,
                 (subject["type"], subject["id"], name), after=subject)
    return attachment(handle, name, content_type="application/gzip")


def _attestations(org, **filters):
    return (Attestation.objects.for_org(org).filter(**filters)
            .select_related("flow", "trail", "artifact", "custom_type", "leaf").order_by("created_at", "id"))


class TrailPackageView(EvidenceView):
    @PACKAGE
    def get(self, request, org, flow, trail):
        trail = self.trail(self.flow(flow), trail)
        artifacts = list(trail.artifacts.select_related("flow", "trail", "leaf"))
        subject = {"type": "trail", "id": trail.name, "flow": trail.flow.name}
        return _package_response(request, self.org, subject, _attestations(self.org, trail=trail), artifacts,
                                 selectors.trail_compliance(trail))


class ArtifactPackageView(EvidenceView):
    @PACKAGE
    def get(self, request, org, flow, fingerprint):
        flow = self.flow(flow)
        fingerprint = services.validate_fingerprint(fingerprint)
        artifacts = list(Artifact.objects.for_org(self.org).filter(flow=flow, fingerprint=fingerprint)
                         .select_related("flow", "trail", "leaf"))
        if not artifacts:
            raise ApiError(404, "not_found", f"flow {flow.name!r} reported no artifact {fingerprint}")
        subject = {"type": "artifact", "id": fingerprint, "flow": flow.name}
        return _package_response(request, self.org, subject, _attestations(self.org, artifact__in=artifacts), artifacts,
                                 selectors.artifact_compliance(self.org, fingerprint))


class AttestationPackageView(EvidenceView):
    @PACKAGE
    def get(self, request, org, pk):
        attestation = get_object_or_404(Attestation.objects.for_org(self.org), pk=pk)
        subject = {"type": "attestation", "id": attestation.pk, "flow": attestation.flow.name,
                   "trail": attestation.trail.name}
        return _package_response(request, self.org, subject, _attestations(self.org, pk=attestation.pk))


class CustomTypesView(EvidenceView):
    """An org's custom attestation types (JSON Schema + compliance rule). Defining one changes how
    compliance is judged, so it takes ``evidence.override`` (owners and admins)."""

    permission = {"GET": "evidence.view", "default": "evidence.override"}

    @LIST
    def get(self, request, org):
        types = CustomAttestationType.objects.for_org(self.org).select_related("org").prefetch_related("versions")
        return Response([custom_type_dict(c, c.versions.all()) for c in types])

    @WRITE
    def post(self, request, org):
        custom, _added = services.create_custom_type(self.ctx(), self.org, payload(request))
        return Response(custom_type_dict(custom), status=status.HTTP_201_CREATED)
