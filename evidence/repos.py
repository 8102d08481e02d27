"""Repositories: the source repositories named by the git provenance csm receives.

kosli reporters send ``repo_info`` (``internal/gitview`` ``GitRepoInfo``: ``url``, ``name``, ``id``,
``provider``, from the CI's variables or the ``--repo-*`` flags) on ``begin trail``, ``attest *`` and
``attest artifact``; the legacy ``report artifact`` sends only ``repo_url``. ``record_sighting`` runs inside
the service that records the trail / artifact / attestation (the same transaction): it upserts the org's
``Repository`` and appends a ``RepositorySighting`` naming what was seen and at which commit.

A repository is identified as kosli does, by the provider's id at the provider (``repo_info.id``; names
are not unique), or by (provider, name) when only a URL was sent. The provider is the reporter's (kosli's vocabulary:
github, gitlab, bitbucket, bitbucket_cloud, bitbucket_dc, azure-devops, ...) or, when absent, derived from
the URL's host; ``other`` when neither tells. The name is ``repo_info.name`` or the URL's path
(``https://github.com/acme/payments.git`` → ``acme/payments``).
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.services import record_event
from csm.api.filters import filter_by_tags
from csm.errors import ServiceError
from csm.lib.bounded import InputError
from evidence.models import Artifact, Flow, Repository, RepositorySighting, Trail
from evidence.selectors import where_it_runs

MAX_NAME = 300
MAX_URL = 1000
MAX_EXTERNAL_ID = 200
PROVIDER = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
HTTP_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# hosts whose provider is known; anything else is "other" unless the reporter said
HOSTS = (("github.com", "github"), ("gitlab.com", "gitlab"), ("bitbucket.org", "bitbucket"),
         ("dev.azure.com", "azure-devops"), ("visualstudio.com", "azure-devops"))
OTHER = "other"


@dataclass(frozen=True)
class RepoRef:
    name: str
    provider: str
    url: str
    external_id: str
    from_info: bool = True  # False: only an artifact's repo_url named it (never overwrites a stored URL)


def provider_for_url(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    for suffix, provider in HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return provider
    if host.startswith("github."):
        return "github"
    if host.startswith("gitlab."):
        return "gitlab"
    return OTHER


def name_for_url(url: str) -> str:
    """``https://github.com/acme/payments.git`` → ``acme/payments``; Azure's ``/org/project/_git/repo`` keeps
    its path without ``_git``."""
    path = urlsplit(url).path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return "/".join(part for part in path.split("/") if part and part != "_git")[:MAX_NAME]


def _string(info: dict, key: str, limit: int) -> str:
    value = info.get(key)
    if value in (None, ""):
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "id":
        value = str(value)  # a provider's numeric id sent as a number
    if not isinstance(value, str):
        raise ServiceError(f"repo_info.{key} must be a string", f"repo_info.{key}")
    value = value.strip()
    if len(value) > limit or CONTROL.search(value):
        raise ServiceError(f"repo_info.{key} must be at most {limit} printable characters", f"repo_info.{key}")
    return value


def parse_repo(repo_info, repo_url="") -> RepoRef | None:
    """The repository a payload names, or None when it names none. ``repo_info`` wins; ``repo_url`` (legacy
    ``report artifact``) is used only when it is an http(s) URL. A malformed ``repo_info`` member is a 400
    naming it."""
    info = repo_info if isinstance(repo_info, dict) else {}
    url = _string(info, "url", MAX_URL)
    if url and not HTTP_URL.match(url):
        raise ServiceError("repo_info.url must be an http(s) URL", "repo_info.url")
    name = _string(info, "name", MAX_NAME)
    external_id = _string(info, "id", MAX_EXTERNAL_ID)
    provider = _string(info, "provider", 40).lower()
    if provider and not PROVIDER.match(provider):
        raise ServiceError("repo_info.provider may contain lowercase letters, digits and . _ - only "
                           "(e.g. github, gitlab, bitbucket, azure-devops)", "repo_info.provider")
    from_info = bool(url or name)
    if not url and isinstance(repo_url, str) and HTTP_URL.match(repo_url.strip()) and len(repo_url) <= MAX_URL:
        url = repo_url.strip()
    if not name and url:
        name = name_for_url(url)
    if not name:
        return None
    if not provider:
        provider = provider_for_url(url) if url else OTHER
    return RepoRef(name=name, provider=provider, url=url, external_id=external_id, from_info=from_info)


def _existing(org, ref: RepoRef) -> Repository | None:
    """The org's row for ``ref``, locked: by provider id when the reporter sent one (adopting a row first
    seen by URL alone, without an id, under the same name); without an id (a bare ``repo_url``) by name,
    the row without an id first, else the one of that name seen last."""
    rows = Repository.objects.select_for_update().filter(org=org, provider=ref.provider)
    if ref.external_id:
        found = rows.filter(external_id=ref.external_id).first()
        return found or rows.filter(external_id="", name=ref.name).first()
    named = rows.filter(name=ref.name)
    return named.filter(external_id="").first() or named.order_by("-last_seen_at", "-id").first()


def _upsert(ctx, org, ref: RepoRef, now) -> Repository:
    repo = _existing(org, ref)
    if repo is None:
        try:
            with transaction.atomic():
                repo = Repository.objects.create(org=org, name=ref.name, provider=ref.provider, url=ref.url,
                                                 external_id=ref.external_id, first_seen_at=now, last_seen_at=now)
        except IntegrityError:  # first seen concurrently by another request: theirs is the row
            repo = _existing(org, ref)
        else:
            record_event(ctx, org, AuditAction.REPOSITORY_CREATED, repo, after=repo.snapshot())
            return repo
    before = repo.snapshot()
    changed = [field for field in ("name", "url", "external_id")
               if getattr(ref, field) and getattr(ref, field) != getattr(repo, field)
               and (ref.from_info or not getattr(repo, field))]
    for field in changed:  # a renamed repository keeps its id, rows and tags
        setattr(repo, field, getattr(ref, field))
    repo.last_seen_at = max(repo.last_seen_at, now)
    repo.save(update_fields=[*changed, "last_seen_at"])
    if changed:
        record_event(ctx, org, AuditAction.REPOSITORY_UPDATED, repo, before=before, after=repo.snapshot())
    return repo


def record_sighting(ctx, org, ref: RepoRef | None, *, flow, trail=None, artifact=None, attestation=None,
                    git_commit: str = "", commit_url: str = "") -> Repository | None:
    """Upsert ``ref``'s repository and record where it was seen. Call inside the recording service's
    transaction. A trail is sighted once per repository (re-beginning it adds nothing)."""
    if ref is None:
        return None
    now = timezone.now()
    repo = _upsert(ctx, org, ref, now)
    if artifact is None and attestation is None and trail is not None and RepositorySighting.objects.filter(
            repository=repo, trail=trail, artifact__isnull=True, attestation__isnull=True).exists():
        return repo
    RepositorySighting.objects.create(
        org=org, repository=repo, flow=flow, trail=trail, artifact=artifact, attestation=attestation,
        git_commit=(git_commit or "")[:64], commit_url=commit_url if HTTP_URL.match(commit_url or "") else "",
        seen_at=now)
    return repo


# --- reads -------------------------------------------------------------------------------------------

MAX_PER_PAGE = 50  # kosli's own limit (listRepos.go: "maximum 50")


def epoch(moment) -> float | None:
    return moment.timestamp() if moment else None


def repo_dict(repo: Repository) -> dict:
    """A repository as ``kosli get repo`` / ``list repos`` read it: ``id`` (csm's id, a string: what ``kosli
    tag repo`` sends), ``name``, ``url``, ``provider``, ``tags`` (an object, ``{}`` when none), plus the
    provider's id (``repo_id``, what ``list repos --repo-id`` filters on) and when csm first and last saw it."""
    return {"id": str(repo.pk), "name": repo.name, "url": repo.url, "provider": repo.provider,
            "repo_id": repo.external_id, "tags": repo.tags or {}, "first_seen_at": epoch(repo.first_seen_at),
            "last_seen_at": epoch(repo.last_seen_at)}


def find_repo(org, name: str, provider: str = "", inner_id: str = "") -> Repository:
    """``kosli get repo`` (and ``tag repo``'s name lookup): by csm's id when ``inner_id`` is given, else by
    name, narrowed by provider. 404 in kosli's words when none matches; 400 when several do (named by
    provider and id: the CLI's ``--provider`` or ``--repo-id`` picks one)."""
    repos = Repository.objects.for_org(org)
    if inner_id:
        found = (repos.filter(pk=int(inner_id)).first()
                 if inner_id.isascii() and inner_id.isdigit() and len(inner_id) <= 18 else None)
        if found is None:
            raise ServiceError(f"Repo with id '{inner_id[:100]}' not found", "id", 404, "not_found")
        return found
    matches = repos.filter(name=name)
    if provider:
        matches = matches.filter(provider=provider.lower())
    found = list(matches.order_by("provider", "id")[:11])
    if not found:
        where = f" with provider '{provider[:40]}'" if provider else ""
        raise ServiceError(f"Repo '{name[:300]}' not found{where}", "name", 404, "not_found")
    if len(found) > 1:
        providers = ", ".join(dict.fromkeys(r.provider for r in found))
        if len({r.provider for r in found}) > 1 and not provider:
            raise ServiceError(f"Multiple repos named '{name}' exist ({providers}). Specify the 'provider' "
                               "(--provider) or the repo's id (--repo-id).", "provider")
        ids = ", ".join(str(r.pk) for r in found[:10])
        raise ServiceError(f"Multiple repos named '{name}' exist ({providers}, ids {ids}). Specify the repo's "
                           "id (--repo-id).", "provider")
    return found[0]


def filter_repos(queryset, params):
    """What ``kosli list repos`` sends (cmd/kosli/listRepos.go): ``name`` (exact), ``search`` (case-insensitive
    substring), ``provider``, ``repo_id`` (the provider's id), ``tag`` (repeatable, ``key`` or ``key:value``;
    a repo with any of them), ``sort_direction`` (asc, desc; by name). ``InputError`` names the parameter."""
    for field, limit in (("name", MAX_NAME), ("search", MAX_NAME), ("provider", 40), ("repo_id", MAX_EXTERNAL_ID)):
        if len(params.get(field) or "") > limit:
            raise InputError(f"{field} is longer than {limit} characters", field)
    if params.get("name"):
        queryset = queryset.filter(name=params["name"])
    if params.get("search"):
        queryset = queryset.filter(name__icontains=params["search"])
    if params.get("provider"):
        queryset = queryset.filter(provider=params["provider"].lower())
    if params.get("repo_id"):
        queryset = queryset.filter(external_id=params["repo_id"])
    queryset = filter_by_tags(queryset, params.getlist("tag"))
    direction = (params.get("sort_direction") or "asc").lower()
    if direction not in ("asc", "desc"):
        raise InputError("sort_direction must be asc or desc", "sort_direction")
    return queryset.order_by("-name" if direction == "desc" else "name", "provider", "id")


PAGE_ROWS = 20


def repository_overview(repo: Repository) -> dict:
    """What the repository's page shows, from its sightings: the flows that built from it, its latest
    trails and artifacts, the latest commits seen (each with where it was seen first), and where its latest
    artifacts run now (the snapshot journal, through ``evidence.selectors.where_it_runs``; at most
    ``PAGE_ROWS`` fingerprints are looked up)."""
    sightings = RepositorySighting.objects.filter(repository=repo)
    flows = Flow.objects.filter(pk__in=sightings.values("flow_id")).order_by("name")
    trail_ids = sightings.exclude(trail=None).values("trail_id")
    trails = Trail.objects.filter(pk__in=trail_ids).select_related("flow").order_by("-created_at", "-id")[:PAGE_ROWS]
    artifact_ids = sightings.exclude(artifact=None).values("artifact_id")
    artifacts = list(Artifact.objects.filter(pk__in=artifact_ids).select_related("flow", "trail")
                     .order_by("-created_at", "-id")[:PAGE_ROWS])
    commits = []
    seen = set()
    for sighting in sightings.exclude(git_commit="").order_by("-seen_at", "-id").select_related("flow", "trail")[:200]:
        if sighting.git_commit in seen:
            continue
        seen.add(sighting.git_commit)
        commits.append(sighting)
        if len(commits) == PAGE_ROWS:
            break
    running = []
    for fingerprint in list(dict.fromkeys(a.fingerprint for a in artifacts)):
        for run in where_it_runs(repo.org, fingerprint):
            if run.get("running"):
                running.append({"fingerprint": fingerprint, **run})
    return {"flows": list(flows), "trails": list(trails), "artifacts": artifacts, "commits": commits,
            "running": running, "sighting_count": sightings.count()}


def repositories_of(org, *, trail=None, fingerprint: str = "") -> list[Repository]:
    """The repositories a trail's or an artifact's provenance named (for links from their pages)."""
    sightings = RepositorySighting.objects.for_org(org)
    if trail is not None:
        sightings = sightings.filter(trail=trail)
    if fingerprint:
        sightings = sightings.filter(artifact__fingerprint=fingerprint)
    return list(Repository.objects.filter(pk__in=sightings.values("repository_id")).order_by("name"))


def repositories_of_flow(flow) -> list[Repository]:
    sightings = RepositorySighting.objects.filter(flow=flow)
    return list(Repository.objects.filter(pk__in=sightings.values("repository_id")).order_by("name"))
