"""Paging of long in-memory lists on web pages (a snapshot's artifacts, its compliance decisions)."""

from django.core.paginator import Page, Paginator

# Artifact tables (environment, snapshot, snapshot compliance) show this many rows a page: a
# 10,000-artifact environment renders well under the page-time target (docs/benchmarks.md, "Page time").
ARTIFACTS_PER_PAGE = 100


def artifact_page(request, artifacts: list, enrich=None) -> Page:
    """The page of ``artifacts`` asked for by ``?artifacts_page=`` (the first when absent, the last when out
    of range), its rows passed through ``enrich`` (a function of the page's list) alone: enrichment and
    rendering cost one page, whatever the environment's size. ``snapshots/_artifact_pager.html`` shows
    the pager."""
    page = Paginator(artifacts, ARTIFACTS_PER_PAGE).get_page(request.GET.get("artifacts_page"))
    rows = list(page.object_list)
    page.object_list = enrich(rows) if enrich else rows
    return page
