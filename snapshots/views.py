"""Web pages of the snapshot journal: environments, one environment, one snapshot, diff, search.
Reads, guarded by ``@org_view("environments.view")``, and one write: requiring or relaxing authorization
in an environment (``environments.manage``)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.lib import links
from csm.web import add_service_error, org_view
from snapshots import hooks, selectors
from snapshots.forms import EnvironmentAuthorizationForm
from snapshots.models import Environment, Snapshot, SnapshotEvent
from snapshots.services.environments import AUTHORIZATION_PERMISSION, set_environment_authorization

SPARK_DAYS = 14


def _environment(request, name: str) -> Environment:
    return get_object_or_404(Environment.objects.for_org(request.org), name=name)


def _enriched(org, artifacts: list[dict], snapshot=None) -> list[dict]:
    """The same enrichment as the API answer (hooks.enrich_artifacts), plus ``commit_link``: the commit
    URL when it is http(s), shown as text otherwise."""
    hooks.enrich_artifacts(org, artifacts, snapshot)
    return _links(artifacts)


def _links(artifacts: list[dict]) -> list[dict]:
    for artifact in artifacts:
        artifact["commit_link"] = links.http_url(artifact.get("commit_url"))
    return artifacts


@org_view({"POST": "environments.manage"})
def environment_authorization(request, env):
    """Require or relax authorization in the environment (org owners and admins), from its page."""
    environment = _environment(request, env)
    form = EnvironmentAuthorizationForm(request.POST, environment=environment)
    if form.is_valid():
        try:
            set_environment_authorization(AuditContext.from_request(request), environment,
                                          form.cleaned_data["require_authorization"], form.cleaned_data["reason"])
        except ServiceError as error:
            add_service_error(form, error)
        else:
            state = "required" if form.cleaned_data["require_authorization"] else "relaxed"
            messages.success(request, f"Authorization is {state} in {environment.name}.")
            return redirect("environment-detail", request.org.slug, environment.name)
    return environment_page(request, environment, authorization_form=form, status=400)


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
    return environment_page(request, _environment(request, env))


def environment_page(request, environment, authorization_form=None, status=200):
    """The environment's page; ``authorization_form`` with errors when its authorization form failed."""
    latest = selectors.latest_snapshot(environment)
    if environment.is_logical:
        artifacts = selectors.logical_artifacts(environment)
    else:
        artifacts = selectors.snapshot_artifacts(latest) if latest else []
    timeline = Paginator(Snapshot.objects.filter(environment=environment).order_by("-index"), 25)
    events = SnapshotEvent.objects.filter(environment=environment).order_by("-snapshot_index", "-id")[:50]
    return render(request, "snapshots/environment_detail.html", {
        "environment": environment, "latest": latest,
        "artifacts": _enriched(request.org, artifacts, None if environment.is_logical else latest),
        "timeline": timeline.get_page(request.GET.get("page")), "events": events,
        "members": environment.included_environments.order_by("name"),
        "standing": hooks.enrich_environments(request.org, [environment]).get(environment.pk, {}),
        "can_manage_authorization": request.org_access.can(AUTHORIZATION_PERMISSION),
        "authorization_form": authorization_form or EnvironmentAuthorizationForm(
            environment=environment, initial={"require_authorization": "false" if environment.require_authorization
                                              else "true"}),
    }, status=status)


@org_view("environments.view")
def snapshot_detail(request, env, index):
    environment = _environment(request, env)
    snapshot = get_object_or_404(Snapshot, environment=environment, index=index)
    artifacts = selectors.snapshot_artifacts(snapshot, include_exited=True)
    top = hooks.enrich_artifacts(request.org, artifacts, snapshot)
    return render(request, "snapshots/snapshot_detail.html", {
        "environment": environment, "snapshot": snapshot, "artifacts": _links(artifacts),
        "compliance": top,
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
    query = request.GET.get("q", "").strip()
    context = {"query": query, "error": "", "result": None}
    if query:
        try:
            context["result"] = selectors.search(request.org, query)
        except ServiceError as error:
            context["error"] = error.message
    return render(request, "snapshots/search.html", context)

