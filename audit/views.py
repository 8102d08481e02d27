"""The org's audit log page: filters, newest first, paginated."""

from django.core.paginator import Paginator
from django.shortcuts import render

from audit.filters import FILTER_PARAMS, AuditFilterForm
from audit.models import AuditEvent
from csm.web import org_view

PAGE_SIZE = 50


@org_view("audit.view")
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.for_org(request.org).order_by("-seq")
    if form.is_bound and form.is_valid():
        events = form.filter(events)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/audit_log.html", {
        "form": form if form.is_bound else AuditFilterForm(),
        "page": page,
        "filtered": any(request.GET.get(name) for name in FILTER_PARAMS),
        "query": query.urlencode(),
    })
