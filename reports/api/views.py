"""REST API of audit reports under /api/v2/orgs/{org}/reports (permission ``reports.view``), and, on
top of it, the report rule of reports/access.py: requesting a kind needs the permission of its
main subject, downloading needs the permission of every part the report contains (403 naming it).
Another org's report is a 404."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response

from audit.context import AuditContext
from csm.api.base import OrgScopedAPIView, OrgScopedViewSet, body_names
from csm.api.errors import ApiError
from reports import access, services
from reports.api.serializers import ReportRequestSerializer, ReportSerializer
from reports.choices import ReportStatus
from reports.models import AuditReport


def download_response(report: AuditReport, fmt: str) -> HttpResponse:
    """The stored PDF or JSON as an attachment, never sniffed or framed (410 once withdrawn by an erasure)."""
    output = report.output
    if output.withdrawn_at is not None:
        raise ApiError(410, "gone", services.withdrawn_message(output))
    if fmt == "pdf":
        body, content_type, digest = bytes(output.pdf), "application/pdf", output.pdf_sha256
    else:
        body, content_type, digest = bytes(output.data_json), "application/json", output.data_sha256
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="csm-{report.kind}-report-{report.pk}.{fmt}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-SHA256"] = digest
    return response


class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """List, request and poll reports."""

    queryset = AuditReport.objects.all()
    serializer_class = ReportSerializer
    permission = "reports.view"
    lookup_url_kwarg = "report_id"

    def scope_names(self, request, kwargs):
        """A request for an environment's report names it in the body (a token's scope applies)."""
        environments, flows = super().scope_names(request, kwargs)
        if request.method == "POST":
            environments += body_names(request.data, "environment")
        return environments, flows

    def get_queryset(self):
        # The stored PDF and JSON (megabytes each) are read only by the download endpoints.
        return super().get_queryset().select_related("org", "output__leaf").defer("output__pdf", "output__data_json")

    @extend_schema(request=ReportRequestSerializer, responses={202: ReportSerializer})
    def create(self, request, *args, **kwargs):
        body = ReportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        kind = body.validated_data["kind"]
        access.require_to_request(request, self.org_access, kind)
        params = {key: value for key, value in body.validated_data.items() if key != "kind"}
        report = services.request_report(AuditContext.from_request(request), self.org, kind, params,
                                         role=self.org_access.role)
        return Response(ReportSerializer(report).data, status=status.HTTP_202_ACCEPTED)


class ReportDownloadView(OrgScopedAPIView):
    """The generated PDF or its JSON data (409 while the report is not done; 410 once withdrawn because it
    printed a person who was erased; 403 naming the permission when the caller may not read a part the report
    contains)."""

    permission = "reports.view"
    fmt = "pdf"
    error_statuses = (409, 410)

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY),
                              (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT)})
    def get(self, request, org, report_id):
        report = get_object_or_404(AuditReport.objects.for_org(self.org).select_related("org"), pk=report_id)
        access.require_to_download(request, self.org_access, report)
        if report.status != ReportStatus.DONE:
            raise ApiError(409, "not_ready", f"The report is {report.status}; download it when it is done.")
        if report.output.withdrawn_at is not None:
            return download_response(report, self.fmt)  # 410, and no download to audit
        services.record_download(AuditContext.from_request(request), report, self.fmt)
        return download_response(report, self.fmt)
