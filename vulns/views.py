"""Vulnerability web pages (read only, ``environments.view``: they say where things run): the org's
vulnerabilities, one vulnerability by any alias (its exposure windows and timeline), and the component
search. The artifact and environment pages' "Vulnerabilities" sections are ``sections.py``. The data comes
from ``pages.py``; advisories are global, everything else shown is this org's."""

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from csm.lib.bounded import InputError, parse_page
from csm.web import org_view
from snapshots.models import Environment

from . import pages
from .forms import ComponentSearchForm, EnvironmentForm, VulnerabilityFilterForm

PERMISSION = "environments.view"
PER_PAGE = 50


@org_view(PERMISSION)
def vulnerability_list(request):
    environments = Environment.objects.for_org(request.org).order_by("name")
    form = VulnerabilityFilterForm(request.GET, environments)
    listed, page, page_error = None, None, ""
    try:
        number = parse_page(request.GET.get("page"))
    except InputError as error:
        number, page_error = 1, error.message
    if form.is_valid() and not page_error:
        listed = pages.vulnerability_list(request.org, environment=form.cleaned_data["environment"],
                                          severity=form.cleaned_data["severity"],
                                          running_only=form.cleaned_data["running"])
        page = Paginator(listed["rows"], PER_PAGE).get_page(number)
    kept = request.GET.copy()
    kept.pop("page", None)
    return render(request, "vulns/vulnerability_list.html", {
        "form": form, "listed": listed, "rows": page, "page_error": page_error, "query": kept.urlencode(),
        "filtered": any(request.GET.get(k) for k in ("environment", "severity", "running")),
    })


@org_view(PERMISSION)
def vulnerability_detail(request, vuln_id):
    advisories = pages.advisory_group(vuln_id)
    if not advisories:
        raise Http404(f"No vulnerability is known as {vuln_id}")
    environments = Environment.objects.for_org(request.org).order_by("name")
    form = EnvironmentForm(request.GET, environments)
    environment = form.cleaned_data["environment"] if form.is_valid() else None
    return render(request, "vulns/vulnerability_detail.html", {
        "asked": vuln_id, "form": form, "environment": environment,
        **pages.vulnerability_detail(request.org, advisories, environment=environment)})


@org_view(PERMISSION)
def component_search(request):
    params = request.GET.copy()
    if not params.get("q") and params.get("purl"):  # the API's parameter name works here too
        params["q"] = params["purl"]
    form = ComponentSearchForm(params)
    text = form.cleaned_data["q"].strip() if form.is_valid() else ""
    found = pages.component_search(request.org, text) if text else None
    if text and found is None:
        form.add_error("q", "Give a package URL (pkg:pypi/jinja2, pkg:npm/lodash@4.17.20), a package name or "
                            "name@version.")
    return render(request, "vulns/component_search.html", {"form": form, "text": text, "found": found})
