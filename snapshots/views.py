"""Web pages of the snapshot journal: environments, one environment, one snapshot, diff, search.
Reads only; every page is guarded by ``@org_view("environments.view")``."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from csm.errors import ServiceError
from csm.lib import links
from csm.lib.bounded import InputError, parse_page
from csm.web import org_view
from snapshots import hooks, selectors
from snapshots.choices import EventKind
from snapshots.filters import EventPageFilterSet
from snapshots.models import Environment, Snapshot, SnapshotEvent

SPARK_DAYS = 14
EVENTS_PAGE = 50


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
    standings = hooks.environment_standings(request.org, envs)
    rows = [{"env": env, "spark": sparkline_points(series[env.pk]), "changes": sum(series[env.pk]),
             "standing": standings[env.pk]} for env in envs]
    context = {"rows": rows, "show_archived": show_archived, "spark_days": SPARK_DAYS}
    if not rows and not show_archived:
        context["agent_command"] = selectors.agent_command(request.org)
        context["can_manage_tokens"] = request.org_access.can("tokens.manage")
    return render(request, "snapshots/environment_list.html", context)



@org_view("environments.view")
def environment_detail(request, env):
    environment = _environment(request, env)
    latest = selectors.latest_snapshot(environment)
    if environment.is_logical:
        artifacts = selectors.logical_artifacts(environment)
    else:
        artifacts = selectors.snapshot_artifacts(latest) if latest else []
    timeline = Paginator(Snapshot.objects.filter(environment=environment).order_by("-index"), 25)
    standing = hooks.environment_standings(request.org, [environment])[environment.pk]
    return render(request, "snapshots/environment_detail.html", {
        "environment": environment, "latest": latest, "standing": standing,
        "artifacts": _enriched(request.org, artifacts, None if environment.is_logical else latest),
        "timeline": timeline.get_page(request.GET.get("page")),
        "members": environment.included_environments.order_by("name"),
        **({} if environment.is_logical else _events(request, environment)),
    })


def _events(request, environment: Environment) -> dict:
    """One page of the environment's events, filtered (EventPageFilterSet) and paged (``events_page``,
    EVENTS_PAGE rows), newest first; an invalid filter shows its problem next to its field and no rows."""
    filterset = EventPageFilterSet(request.GET, queryset=SnapshotEvent.objects.filter(environment=environment)
                                   .order_by("-snapshot_index", "-id"))
    page, page_error = None, ""
    try:
        number = parse_page(request.GET.get("events_page"), "events_page")
    except InputError as error:
        number, page_error = 1, error.message
    if filterset.is_valid() and not page_error:
        paginator = Paginator(filterset.qs, EVENTS_PAGE)
        page = paginator.page(min(number, paginator.num_pages))
    kept = request.GET.copy()
    kept.pop("events_page", None)
    kept.pop("page", None)
    filters = {key: kept.get(key, "") for key in ("kind", "artifact", "from", "to")}
    return {"events": page, "event_form": filterset.form, "event_query": kept.urlencode(),
            "event_filters": filters, "event_page_error": page_error,
            "event_kinds": EventKind.choices, "filtered": any(filters.values())}


@org_view("environments.view")
def environment_events(request, env):
    """The events section of the environment page alone (HTMX swaps it in); a plain request is sent to
    the whole page with the same query."""
    environment = _environment(request, env)
    if not request.htmx:
        url = reverse("environment-detail", args=[request.org.slug, environment.name])
        query = request.GET.urlencode()
        return redirect(f"{url}?{query}#events" if query else f"{url}#events")
    return render(request, "snapshots/_events.html", {"environment": environment,
                                                      **_events(request, environment)})


@org_view("environments.view")
def snapshot_detail(request, env, index):
    environment = _environment(request, env)
    snapshot = get_object_or_404(Snapshot, environment=environment, index=index)
    artifacts = selectors.snapshot_artifacts(snapshot, include_exited=True)
    return render(request, "snapshots/snapshot_detail.html", {
        "environment": environment, "snapshot": snapshot, "artifacts": _enriched(request.org, artifacts, snapshot),
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
            result = selectors.diff_snapshots(*snapshots, include_unchanged=True)
        except (selectors.SnapshotNotFound, selectors.BadSnappish) as problem:
            error = str(problem)
    return render(request, "snapshots/diff.html", {"envs": envs, "sides": sides, "error": error, "result": result})


@org_view("environments.view")
def search(request):
    """One search box: fingerprint prefix, artifact or image name, git commit, flow or trail name
    (selectors.search_everything); results grouped by kind, each linked."""
    query = request.GET.get("q", "").strip()
    context = {"query": query[:selectors.SEARCH_MAX], "error": "", "result": None}
    if query:
        try:
            context["result"] = selectors.search_everything(request.org, query)
        except ServiceError as error:
            context["error"] = error.message
    return render(request, "snapshots/search.html", context)

