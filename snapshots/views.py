"""Web pages of the snapshot journal: environments, one environment, one snapshot, diff, search.
Reads, guarded by ``@org_view("environments.view")``, and the environment page's writes: requiring or
relaxing authorization and renaming (``environments.manage``), a logical environment's members
(``environments.edit``)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from audit.context import AuditContext
from csm.errors import ServiceError
from csm.lib import links
from csm.lib.bounded import InputError, parse_page
from csm.paging import artifact_page
from csm.web import add_service_error, org_view, page_sections
from snapshots import hooks, selectors
from snapshots.change_windows import describe_windows, windows_from_text, windows_to_text
from snapshots.choices import EventKind
from snapshots.filters import EventPageFilterSet
from snapshots.forms import ChangeWindowsForm, EnvironmentAuthorizationForm
from snapshots.models import Environment, Snapshot, SnapshotEvent
from snapshots.services.environments import (
    AUTHORIZATION_PERMISSION,
    EDIT_PERMISSION,
    join_environment,
    leave_environment,
    rename_environment,
    set_change_windows,
    set_environment_authorization,
)

SPARK_DAYS = 14
EVENTS_PAGE = 50
UNCHANGED_SHOWN = 500  # rows of the diff page's "Not changed" list
DIFF_ROWS = 250  # rows of each changed / only-in / scaled list per page of the diff page (?diff_page=)
DIFF_LISTS = ("changed", "only_in_1", "only_in_2", "scaled")


def _environment(request, name: str) -> Environment:
    """The environment named so now or before a rename (``selectors.environment_named``)."""
    environment = selectors.environment_named(request.org, name)
    if environment is None:
        raise Http404(f"No environment named {name!r}.")
    return environment


@org_view({"POST": "environments.manage"})
def environment_rename(request, env):
    """Rename the environment from its page (the API's service: the old name keeps leading to it)."""
    environment = _environment(request, env)
    old = environment.name
    try:
        environment = rename_environment(AuditContext.from_request(request), request.org, environment,
                                         request.POST.get("new_name", ""))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        if environment.name != old:
            messages.success(request, f"Environment {old} renamed to {environment.name}; agents reporting under "
                                      f"the old name keep reporting here.")
    return redirect("environment-detail", request.org.slug, environment.name)


@org_view({"POST": EDIT_PERMISSION})
def environment_members(request, env):
    """Add (``join``) or remove (``leave``) a member of a logical environment, from its page."""
    environment = _environment(request, env)
    ctx = AuditContext.from_request(request)
    name = request.POST.get("environment", "")
    try:
        if request.POST.get("action") == "leave":
            leave_environment(ctx, request.org, environment, name)
            messages.success(request, f"{name} is no longer part of {environment.name}.")
        else:
            join_environment(ctx, request.org, environment, name)
            messages.success(request, f"{name} joined {environment.name}.")
    except ServiceError as error:
        messages.error(request, error.message)
    return redirect("environment-detail", request.org.slug, environment.name)


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


@org_view({"POST": EDIT_PERMISSION})
def environment_change_windows(request, env):
    """Set the environment's change windows from its page (``environments.edit``, as the API's PUT)."""
    environment = _environment(request, env)
    form = ChangeWindowsForm(request.POST)
    if form.is_valid():
        try:
            windows = windows_from_text(form.cleaned_data["windows"], "windows")
            set_change_windows(AuditContext.from_request(request), environment, windows, form.cleaned_data["tz"])
        except ServiceError as error:
            add_service_error(form, ServiceError(error.message, "tz" if error.field == "change_window_tz"
                                                 else "windows"))
        else:
            messages.success(request, f"Change windows of {environment.name} saved." if windows else
                             f"{environment.name} has no change windows: no change is flagged.")
            return redirect("environment-detail", request.org.slug, environment.name)
    return environment_page(request, environment, change_windows_form=form, status=400)


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
    standings = hooks.enrich_environments(request.org, envs)
    rows = [{"env": env, "spark": sparkline_points(series[env.pk]), "changes": sum(series[env.pk]),
             "standing": standings.get(env.pk, {})} for env in envs]
    context = {"rows": rows, "show_archived": show_archived, "spark_days": SPARK_DAYS}
    if not rows and not show_archived:
        context["agent_command"] = selectors.agent_command(request.org)
        context["can_manage_tokens"] = request.org_access.can("tokens.manage")
    return render(request, "snapshots/environment_list.html", context)


@org_view("environments.view")
def environment_detail(request, env):
    environment = _environment(request, env)
    if environment.name != env:  # a former name: the page lives under the current one
        return redirect("environment-detail", request.org.slug, environment.name)
    return environment_page(request, environment)


def environment_page(request, environment, authorization_form=None, status=200, change_windows_form=None):
    """The environment's page; ``authorization_form`` / ``change_windows_form`` with errors when that form
    failed."""
    latest = selectors.latest_snapshot(environment)
    if environment.is_logical:
        page = artifact_page(request, selectors.logical_artifacts(environment),
                             lambda rows: _enriched(request.org, rows))
    else:
        # Only the page's rows become artifact dicts and are enriched.
        page = artifact_page(request, selectors.snapshot_artifact_rows(latest, instances=False) if latest else [],
                             lambda rows: _enriched(request.org, selectors.build_artifacts(latest, rows), latest))
    timeline = Paginator(Snapshot.objects.filter(environment=environment).order_by("-index"), 25)
    return render(request, "snapshots/environment_detail.html", {
        "environment": environment, "latest": latest, "artifacts": page, "artifact_page": page,
        "timeline": timeline.get_page(request.GET.get("page")),
        "members": environment.included_environments.order_by("name"),
        "can_edit_members": environment.is_logical and request.org_access.can(EDIT_PERMISSION),
        "joinable": (Environment.objects.for_org(request.org).exclude(type="logical").exclude(
            pk__in=environment.included_environments.values("pk")).order_by("name") if environment.is_logical else []),
        "can_rename": request.org_access.can(AUTHORIZATION_PERMISSION),
        "former_names": environment.former_names.filter(released_at=None).order_by("renamed_at"),
        "standing": hooks.enrich_environments(request.org, [environment]).get(environment.pk, {}),
        "can_manage_authorization": request.org_access.can(AUTHORIZATION_PERMISSION),
        "authorization_form": authorization_form or EnvironmentAuthorizationForm(
            environment=environment, initial={"require_authorization": "false" if environment.require_authorization
                                              else "true"}),
        "can_edit_change_windows": not environment.is_logical and request.org_access.can(EDIT_PERMISSION),
        "change_windows_text": describe_windows(environment.change_windows, environment.change_window_tz),
        "change_windows_form": change_windows_form or ChangeWindowsForm(initial={
            "windows": windows_to_text(environment.change_windows), "tz": environment.change_window_tz}),
        "sections": page_sections(request, "environment", environment=environment),
        **({} if environment.is_logical else _events(request, environment)),
    }, status=status)


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
    top: dict = {}

    def enrich(rows):
        # Only the page's rows become artifact dicts and are enriched; the snapshot-level fields
        # (its compliance) come back from the same call.
        built = selectors.build_artifacts(snapshot, rows)
        top.update(hooks.enrich_artifacts(request.org, built, snapshot) or {})
        return _links(built)

    page = artifact_page(request, selectors.snapshot_artifact_rows(snapshot, include_exited=True, instances=False),
                         enrich)
    return render(request, "snapshots/snapshot_detail.html", {
        "environment": environment, "snapshot": snapshot, "artifacts": page, "artifact_page": page,
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
            result = selectors.diff_snapshots(*snapshots)
            # The collapsed "Not changed" list of two 10,000-artifact snapshots would be most of the page's
            # time: its count is shown and its first rows listed (the API's diff has them all).
            result["unchanged_total"], result["unchanged"] = selectors.unchanged_between(*snapshots, UNCHANGED_SHOWN)
            result["diff_page"] = _diff_page(request, result)
        except (selectors.SnapshotNotFound, selectors.BadSnappish, InputError) as problem:
            error = problem.message if isinstance(problem, InputError) else str(problem)
            result = None
    return render(request, "snapshots/diff.html", {"envs": envs, "sides": sides, "error": error, "result": result})


def _diff_page(request, result: dict) -> dict:
    """One page (``?diff_page=``, DIFF_ROWS rows of each list) of the changed / only-in / scaled lists,
    so a diff of thousands of changes renders one page's rows; each list keeps its total."""
    number = parse_page(request.GET.get("diff_page"), "diff_page")
    pages = max([1] + [-(-len(result[key]) // DIFF_ROWS) for key in DIFF_LISTS])
    number = min(number, pages)
    for key in DIFF_LISTS:
        result[f"{key}_total"] = len(result[key])
        result[key] = result[key][(number - 1) * DIFF_ROWS:number * DIFF_ROWS]
    return {"number": number, "pages": pages, "previous": number - 1 if number > 1 else None,
            "next": number + 1 if number < pages else None, "rows": DIFF_ROWS}


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


@org_view("environments.view")
def kosli_snapshot_link(request, env, index):
    """A kosli-style web link to a snapshot (``kosli get trail --output markdown``, cmd/kosli/getTrail.go:
    ``{host}/{org}/environments/{env}/{index}``) lands on csm's snapshot page (access checked as there)."""
    return redirect("snapshot-detail", request.org.slug, env, index)
