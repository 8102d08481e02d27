"""Web pages of audit reports: the Reports page (request, list, poll, download) and downloads.

Every page is guarded by ``@org_view("reports.view")`` (other orgs get a 404) and, on top of it, by
the report rule of reports/access.py: requesting a kind and downloading a report need the
permissions of what it shows; a refusal is the 403 page naming the permission."""

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from audit.context import AuditContext
from audit.models import AuditEvent
from csm.errors import ServiceError
from csm.web import add_service_error, org_view
from reports import access, forms, services
from reports import dashboard as board
from reports.api.views import download_response
from reports.choices import ReportKind, ReportStatus
from reports.models import AuditReport
from tenants.models import Invitation, Membership, ServiceAccount


def _environment_names(org) -> list[str]:
    from django.apps import apps

    Environment = apps.get_model("snapshots", "Environment")
    return list(Environment.objects.for_org(org).order_by("name").values_list("name", flat=True)[:500])


@require_http_methods(["GET", "POST"])
@org_view("reports.view")
def report_list(request):
    """GET: the reports and the request form (query parameters prefill it). POST: request a report;
    a kind the role may not read is the 403 page first, invalid parameters re-render the page (400)
    with the problem next to the field."""
    org = request.org
    if request.method == "POST":
        access.require_to_request(request, request.org_access, request.POST.get("kind", ""))
        form = forms.ReportRequestForm(request.POST, org=org)
        if form.is_valid():
            try:
                report = services.request_report(AuditContext.from_request(request), org, form.cleaned_data["kind"],
                                                 form.cleaned_data["params"], role=request.org_access.role)
            except ServiceError as error:
                add_service_error(form, error)
            else:
                messages.success(request,
                                 f"Generating “{report.title}”. It appears below; download it when it is done.")
                return redirect("report-list", org.slug)
    else:
        prefill = {key: request.GET[key].strip() for key in ("kind", *forms.PARAMS) if request.GET.get(key)}
        form = forms.ReportRequestForm(org=org, initial={**forms.default_range(), **prefill})
    reports = list(AuditReport.objects.for_org(org).select_related("output").defer(
        "output__pdf", "output__data_json")[:100])
    pending = [str(r.pk) for r in reports if r.status in (ReportStatus.PENDING, ReportStatus.RUNNING)]
    for report in reports:
        report.lacking = access.lacking_to_download(request.org_access, report)
    kinds = [(value, label) for value, label in ReportKind.choices
             if not access.missing(request.org_access.role, access.rule(value).permissions)]
    return render(request, "reports/list.html", {
        "reports": reports, "pending": pending, "form": form, "kinds": kinds,
        "environments": _environment_names(org),
    }, status=400 if form.errors else 200)


@require_GET
@org_view("reports.view")
def report_status(request, report_id):
    """Small JSON for the page's polling snippet."""
    report = get_object_or_404(AuditReport.objects.for_org(request.org), pk=report_id)
    return JsonResponse({"id": str(report.pk), "status": report.status, "progress": report.progress,
                         "note": report.progress_note})


@require_GET
@org_view("reports.view")
def report_download(request, report_id, fmt):
    report = get_object_or_404(AuditReport.objects.for_org(request.org).select_related("org"), pk=report_id)
    access.require_to_download(request, request.org_access, report)
    if report.status != ReportStatus.DONE:
        raise Http404("This report is not ready.")
    services.record_download(AuditContext.from_request(request), report, fmt)
    return download_response(report, fmt)


# --- the org dashboard (h2) ----------------------------------------------------------------------------

@org_view("org.view")
def dashboard(request):
    """``/o/<org>/``: environments with their standing, what runs now and needs attention, recent
    changes, failing alert deliveries, the first-run checklist until every step is done, and the org's
    own figures (members, invitations, service accounts, recent audit activity) on the side. Each
    section shows only to a role that may see its pages."""
    org, access = request.org, request.org_access
    can_see_environments = access.can("environments.view")
    context = {
        "members": Membership.objects.for_org(org).count(),
        "service_accounts": ServiceAccount.objects.for_org(org).filter(deactivated_at__isnull=True).count(),
        "pending_invitations": Invitation.objects.for_org(org).filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()).count(),
        "recent_events": AuditEvent.objects.for_org(org).order_by("-seq")[:8] if access.can("audit.view") else None,
        "checklist": board.getting_started(org, access.can("tokens.manage")),
        "can_see_environments": can_see_environments,
        "chart_days": board.CHART_DAYS,
    }
    if can_see_environments:
        context.update(rows=board.environment_rows(org), attention=board.attention(org),
                       changes=board.recent_changes(org))
    if access.can("actions.view"):
        context["deliveries"] = board.failing_deliveries(org)
    return render(request, "reports/dashboard.html", context)
