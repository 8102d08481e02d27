"""The org's audit log page: filters, newest first, paginated."""

from django.core.paginator import Paginator
from django.shortcuts import render

from audit.filters import FILTER_PARAMS, AuditEventFilterSet
from audit.models import AuditEvent
from csm.web import org_view

PAGE_SIZE = 50


@org_view("audit.view")
def audit_log(request):
    # The API's FilterSet; an invalid value shows its error next to the field and filters nothing.
    events = AuditEvent.objects.for_org(request.org).order_by("-seq")
    filterset = AuditEventFilterSet(request.GET or None, queryset=events)
    if filterset.is_valid():
        events = filterset.qs
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/audit_log.html", {
        "form": filterset.form,
        "page": page,
        "filtered": any(request.GET.get(name) for name in FILTER_PARAMS),
        "query": query.urlencode(),
    })
