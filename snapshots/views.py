"""Web pages of the snapshot journal: environments, one environment, one snapshot, diff, search.
Reads only; every page is guarded by ``@org_view("environments.view")``."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from csm.errors import ServiceError
from csm.lib import links
from csm.paging import artifact_page
from csm.web import org_view
from snapshots import hooks, selectors
from snapshots.models import Environment, Snapshot, SnapshotEvent

SPARK_DAYS = 14
UNCHANGED_SHOWN = 500  # rows of the diff page's "Not changed" list


def _environment(request, name: str) -> Environment:
    return get_object_or_404(Environment.objects.for_org(request.org), name=name)


def _enriched(org, artifacts: list[dict], snapshot=None) -> list[dict]:
    """The same enrichment as the API answer (hooks.enrich_artifacts), plus ``commit_link``: the commit
    URL when it is http(s), shown as text otherwise."""
    hooks.enrich_artifacts(org, artifacts, snapshot)
    for artifact in artifacts:
        artifact["commit_link"] = links.http_url(artifact.get("commit_url"))
    return artifacts


def sparkline_points(series: list[int], width: int = 112, height: int = 22) -> str:
    """SVG polyline points for a small change chart (newest day on the right)."""
    top = max(series) or 1
    step = width / max(len(series) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (value / top) * (height - 4):.1f}" for i, value in enumerate(series))


@org_view("environments.view")
def environment_list(request):
    show_archived = request.GET.get("archived") == "1"
    envs = list(Environment.objects.for_org(request.org).filter(archived=show_archived).order_by("name"))
    series = selectors.change_sparkline(envs, SPARK_DAYS)
    rows = [{"env": env, "spark": sparkline_points(series[env.pk]), "changes": sum(series[env.pk])} for env in envs]
    return render(request, "snapshots/environment_list.html", {
        "rows": rows, "show_archived": show_archived, "spark_days": SPARK_DAYS})


@org_view("environments.view")
def environment_detail(request, env):
    environment = _environment(request, env)
    latest = selectors.latest_snapshot(environment)
    if environment.is_logical:
        page = artifact_page(request, selectors.logical_artifacts(environment),
                             lambda rows: _enriched(request.org, rows))
    else:
        # Only the page's rows become artifact dicts and are enriched.
        page = artifact_page(request, selectors.snapshot_artifact_rows(latest, instances=False) if latest else [],
                             lambda rows: _enriched(request.org, selectors.build_artifacts(latest, rows), latest))
    timeline = Paginator(Snapshot.objects.filter(environment=environment).order_by("-index"), 25)
    events = SnapshotEvent.objects.filter(environment=environment).order_by("-snapshot_index", "-id")[:50]
    return render(request, "snapshots/environment_detail.html", {
        "environment": environment, "latest": latest, "artifacts": page, "artifact_page": page,
        "timeline": timeline.get_page(request.GET.get("page")), "events": events,
        "members": environment.included_environments.order_by("name"),
    })


@org_view("environments.view")
def snapshot_detail(request, env, index):
    environment = _environment(request, env)
    snapshot = get_object_or_404(Snapshot, environment=environment, index=index)
    page = artifact_page(request, selectors.snapshot_artifact_rows(snapshot, include_exited=True, instances=False),
                         lambda rows: _enriched(request.org, selectors.build_artifacts(snapshot, rows), snapshot))
    return render(request, "snapshots/snapshot_detail.html", {
        "environment": environment, "snapshot": snapshot, "artifacts": page, "artifact_page": page,
        "has_next": index < environment.last_snapshot_index,
    })


@org_view("environments.view")
def diff(request):
    envs = list(Environment.objects.for_org(request.org).exclude(type="logical").order_by("name"))
    sides, error, result = [], "", None
    for n in ("1", "2"):
        sides.append({"n": n, "env": request.GET.get(f"env{n}", ""), "at": request.GET.get(f"at{n}", "-1") or "-1"})
    if all(side["env"] for side in sides):
        try:
            snapshots = []
            for side in sides:
                environment = next((e for e in envs if e.name == side["env"]), None)
                if environment is None:
                    raise selectors.SnapshotNotFound(f"No environment named {side['env']!r}.")
                snapshots.append(selectors.resolve_snapshot(environment, side["at"]))
            result = selectors.diff_snapshots(*snapshots)
            # The collapsed "Not changed" list of two 10,000-artifact snapshots would be most of the page's
            # time: its count is shown and its first rows listed (the API's diff has them all).
            result["unchanged_total"], result["unchanged"] = selectors.unchanged_between(*snapshots, UNCHANGED_SHOWN)
        except (selectors.SnapshotNotFound, selectors.BadSnappish) as problem:
            error = str(problem)
    return render(request, "snapshots/diff.html", {"envs": envs, "sides": sides, "error": error, "result": result})


@org_view("environments.view")
def search(request):
    query = request.GET.get("q", "").strip()
    context = {"query": query, "error": "", "result": None}
    if query:
        try:
            context["result"] = selectors.search(request.org, query)
        except ServiceError as error:
            context["error"] = error.message
    return render(request, "snapshots/search.html", context)

