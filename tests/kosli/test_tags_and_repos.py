"""kosli ``tag``, ``get repo`` and ``list repos`` against csm, each request built as the CLI's
``internal/requests/requests.go`` builds it (``tests/kosli/cli.py``), and the repositories csm learns from
the ``repo_info`` (``internal/gitview`` ``GitRepoInfo``: url, name, id, provider) that ``begin trail``,
``attest *`` and ``report artifact`` send."""

import hashlib
import importlib

import pytest
from django.apps import apps

from audit.context import AuditContext
from audit.models import AuditEvent
from evidence.models import Artifact, Flow, Repository, RepositorySighting, Trail
from snapshots.models import Environment
from snapshots.services.environments import create_or_update_environment
from tenants.choices import Role
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

COMMIT = "0fc1ba9876f91b215679f3649b8668085d820ab5"
GITHUB = {"url": "https://github.com/kosli-dev/cli", "name": "kosli-dev/cli", "id": "1234567890",
          "provider": "github"}


@pytest.fixture
def member(org, token_for):
    return token_for(org, Role.MEMBER)


@pytest.fixture
def flow(org, member):
    """``kosli create flow backend`` (createFlow.go: PUT /api/v2/flows/{org}, JSON ``FlowPayload``)."""
    answer = cli(member, "PUT", "/api/v2/flows/acme", {"name": "backend", "description": "", "visibility": "private",
                                                        "template": ["artifact"]})
    assert answer.status_code in (200, 201), answer.content
    return Flow.objects.get(org=org, name="backend")


def begin_trail(token, name, repo_info=None, flow="backend", org="acme"):
    """cmd/kosli/beginTrail.go ``beginTrailOptions.run``: PUT /api/v2/trails/{org}/{flow}, multipart
    ``data_json`` = ``TrailPayload`` (name, git_commit_info, repo_info omitempty)."""
    payload = {"name": name, "git_commit_info": {"sha1": COMMIT, "message": "a change", "author": "dev <d@e.com>",
                                                 "timestamp": 1700000000, "branch": "main",
                                                 "url": f"https://github.com/kosli-dev/cli/commit/{COMMIT}"}}
    if repo_info is not None:
        payload["repo_info"] = repo_info
    return cli(token, "PUT", f"/api/v2/trails/{org}/{flow}", form=[("field", "data_json", payload)])


def get_repo(token, name, provider="", repo_id="", org="acme"):
    """cmd/kosli/getRepo.go ``getRepoOptions.run`` / ``fetchRepoInnerID``: GET /api/v2/repos/{org}/{name}
    (``url.JoinPath``: the name's slash stays a path separator), ``?id=`` for --repo-id (the id doubles as
    the path), else ``?provider=``."""
    query = {"id": repo_id} if repo_id else ({"provider": provider} if provider else None)
    return cli(token, "GET", f"/api/v2/repos/{org}/{repo_id or name}", query=query)


def tag(token, kind, identifier, set_tags=None, remove_tags=None, org="acme"):
    """cmd/kosli/tag.go ``tagOptions.run``: PATCH /api/v2/tags/{org}/{type}/{id}, JSON ``TagResourcePayload``
    ``{"set_tags": map, "remove_tags": []}`` (both always sent: no omitempty; the flags default to empty)."""
    return cli(token, "PATCH", f"/api/v2/tags/{org}/{kind}/{identifier}",
               {"set_tags": set_tags or {}, "remove_tags": remove_tags or []})


def assert_repo_shape(body):
    """What ``printRepoAsTable`` prints (name, id, url, provider via %v; tags via formatRepoTags, which
    asserts ``map[string]any``) and ``fetchRepoInnerID`` decodes (``ID string `json:"id"```)."""
    assert isinstance(body["id"], str) and body["id"]
    assert isinstance(body["name"], str) and isinstance(body["url"], str) and isinstance(body["provider"], str)
    assert isinstance(body["tags"], dict)


def test_begin_trail_repo_info_makes_a_repository_get_repo_reads(org, member, flow):
    """cmd/kosli/beginTrail.go (``TrailPayload.repo_info``, set by mergeGitRepoInfo only when id, name and
    url are all known) then cmd/kosli/getRepo.go ``getRepoOptions.run`` + ``printRepoAsTable``: the repo
    csm learned answers by name with ``id`` (a string), ``name``, ``url``, ``provider`` and ``tags`` (an
    object, ``{}`` when untagged: kosli's test 15). Its first sighting is audited."""
    assert begin_trail(member, "build-1", GITHUB).status_code == 201
    answer = get_repo(member, "kosli-dev/cli")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert_repo_shape(body)
    assert (body["name"], body["url"], body["provider"], body["tags"], body["repo_id"]) == (
        "kosli-dev/cli", "https://github.com/kosli-dev/cli", "github", {}, "1234567890")
    repo = Repository.objects.get(org=org)
    assert body["id"] == str(repo.pk)
    sighting = RepositorySighting.objects.get(repository=repo)
    assert sighting.trail.name == "build-1" and sighting.git_commit == COMMIT
    event = AuditEvent.objects.get(org=org, action="repository.created")
    assert event.after["name"] == "kosli-dev/cli" and event.target_id == str(repo.pk)

    # re-beginning the trail sights it once; --provider narrows; the id (``--repo-id``) finds it too
    assert begin_trail(member, "build-1", GITHUB).status_code == 200
    assert RepositorySighting.objects.filter(repository=repo).count() == 1
    assert get_repo(member, "kosli-dev/cli", provider="github").json()["id"] == str(repo.pk)
    assert get_repo(member, "", repo_id=str(repo.pk)).json()["name"] == "kosli-dev/cli"


def test_get_repo_not_found_answers_as_kosli(member, flow):
    """cmd/kosli/getRepo_test.go cases 01, 06, 13: ``Error: Repo 'NAME' not found`` for an unknown name,
    a provider that does not match, and an unknown ``--repo-id`` (``Client.Do`` prints ``message``)."""
    assert begin_trail(member, "build-1", GITHUB).status_code == 201
    answer = get_repo(member, "non-existing/repo")
    assert answer.status_code == 404 and cli_error(answer).startswith("Repo 'non-existing/repo' not found")
    answer = get_repo(member, "kosli-dev/cli", provider="gitlab")
    assert answer.status_code == 404 and cli_error(answer).startswith("Repo 'kosli-dev/cli' not found")
    answer = get_repo(member, "", repo_id="no-such-inner-id")
    assert answer.status_code == 404 and "Repo with id 'no-such-inner-id' not found" in cli_error(answer)


def test_repos_sharing_a_name_are_told_apart(member, flow):
    """cmd/kosli/getRepo_test.go case 10: two repos named alike are two repos (kosli identifies a repo by
    the provider's id); asking by name alone is a 400 (never a 409, which the CLI retries) naming the
    providers, and ``--provider`` narrows when the providers differ. Within one provider the ids are named:
    csm will not pick one of them for ``kosli tag repo`` to tag."""
    name = "get-repo-suite-org/get-repo-ambiguous-repo"
    for trail, repo_id, provider in (("t1", "111", "github"), ("t2", "222", "github"), ("t3", "9", "gitlab")):
        info = {"url": f"https://{provider}.com/{name}", "name": name, "id": repo_id, "provider": provider}
        assert begin_trail(member, trail, info).status_code == 201
    answer = get_repo(member, name)
    assert answer.status_code == 400
    assert cli_error(answer).startswith(f"Multiple repos named '{name}' exist (github, gitlab). Specify the "
                                        "'provider'")
    assert get_repo(member, name, provider="gitlab").json()["repo_id"] == "9"
    answer = get_repo(member, name, provider="github")
    assert answer.status_code == 400 and "--repo-id" in cli_error(answer)


def test_report_artifact_and_attestation_provenance_make_repositories(org, member, flow):
    """cmd/kosli/reportArtifact.go ``ArtifactPayload`` sends only ``repo_url`` and ``commit_url``: the
    repository is named by the URL's path and its provider by the host. An attestation's ``repo_info``
    (attestation.go ``CommonAttestationPayload``) sights the repository on the attestation."""
    fingerprint = hashlib.sha256(b"backend").hexdigest()
    answer = cli(member, "POST", "/api/v2/artifacts/acme/backend", {
        "fingerprint": fingerprint, "filename": "backend:1.0", "git_commit": COMMIT,
        "build_url": "https://ci.example.com/1", "commit_url": f"https://gitlab.com/acme/backend/-/commit/{COMMIT}",
        "repo_url": "https://gitlab.com/acme/backend.git", "commits_list": []})
    assert answer.status_code == 201, answer.content
    repo = Repository.objects.get(org=org)
    assert (repo.name, repo.provider, repo.url, repo.external_id) == (
        "acme/backend", "gitlab", "https://gitlab.com/acme/backend.git", "")
    sighting = RepositorySighting.objects.get(repository=repo)
    assert sighting.artifact.fingerprint == fingerprint and sighting.commit_url.endswith(COMMIT)

    # the same repository, now with its provider id: adopted, not duplicated
    payload = {"git_commit_info": {"sha1": COMMIT}, "repo_info": {"url": "https://gitlab.com/acme/backend",
               "name": "acme/backend", "id": "77", "provider": "gitlab"}, "attestation_name": "tests",
               "is_compliant": True}
    answer = cli(member, "POST", "/api/v2/attestations/acme/backend/trail/build-1/generic",
                 form=[("field", "data_json", payload)])
    assert answer.status_code == 201, answer.content
    repo.refresh_from_db()
    assert Repository.objects.filter(org=org).count() == 1
    assert (repo.external_id, repo.url) == ("77", "https://gitlab.com/acme/backend")
    assert RepositorySighting.objects.filter(repository=repo, attestation__isnull=False).count() == 1
    assert AuditEvent.objects.filter(org=org, action="repository.updated").count() == 1

    # a later bare repo_url (another spelling of the URL) sights it but never overwrites the reported URL
    answer = cli(member, "POST", "/api/v2/artifacts/acme/backend", {
        "fingerprint": hashlib.sha256(b"backend-2").hexdigest(), "filename": "backend:2.0", "git_commit": COMMIT,
        "build_url": "", "commit_url": "", "repo_url": "https://gitlab.com/acme/backend.git", "commits_list": []})
    assert answer.status_code == 201, answer.content
    repo.refresh_from_db()
    assert repo.url == "https://gitlab.com/acme/backend" and Repository.objects.filter(org=org).count() == 1
    assert RepositorySighting.objects.filter(repository=repo).count() == 3
    assert AuditEvent.objects.filter(org=org, action="repository.updated").count() == 1


def test_malformed_repo_info_is_a_400_naming_it_and_nothing_is_written(org, member, flow):
    """begin trail with a ``repo_info`` csm cannot use: a 400 naming the member, no trail, no repository."""
    answer = begin_trail(member, "build-x", {**GITHUB, "url": "javascript:alert(1)"})
    assert answer.status_code == 400 and "repo_info.url" in answer.json()["error"]["fields"]
    answer = begin_trail(member, "build-x", {**GITHUB, "name": ["not", "a", "string"]})
    assert answer.status_code == 400 and "repo_info.name" in answer.json()["error"]["fields"]
    assert not Trail.objects.filter(org=org, name="build-x").exists()
    assert not Repository.objects.filter(org=org).exists()


def test_tag_repo_after_resolving_its_id(org, member, flow):
    """cmd/kosli/tag.go ``tagOptions.run``: ``kosli tag repo kosli-dev/cli --set team=platform`` first
    resolves the name (``fetchRepoInnerID``: GET the repo, read ``id``), then PATCHes the tags endpoint with
    that id; ``--unset`` removes keys (written ``key`` or, as the CLI's help shows, ``key=value``). Success
    is a 200 (the CLI prints its own message); the change is audited with before and after; then ``get
    repo`` shows the tags (kosli's test 02 prints ``Tags: team=platform``)."""
    assert begin_trail(member, "build-1", GITHUB).status_code == 201
    inner_id = get_repo(member, "kosli-dev/cli").json()["id"]
    answer = tag(member, "repo", inner_id, {"team": "platform", "tier": "1"})
    assert answer.status_code == 200, answer.content
    assert get_repo(member, "kosli-dev/cli").json()["tags"] == {"team": "platform", "tier": "1"}
    answer = tag(member, "repos", inner_id, remove_tags=["tier=1"])
    assert answer.status_code == 200 and answer.json()["tags"] == {"team": "platform"}
    events = list(AuditEvent.objects.filter(org=org, action="tags.changed").order_by("seq"))
    assert [e.before["tags"] for e in events] == [{}, {"team": "platform", "tier": "1"}]
    assert events[1].after == {"type": "repo", "tags": {"team": "platform"}}
    assert events[1].target_type == "repository" and events[1].target_id == inner_id
    # no change: nothing audited
    assert tag(member, "repo", inner_id, {"team": "platform"}).status_code == 200
    assert AuditEvent.objects.filter(org=org, action="tags.changed").count() == 2


def test_tag_flow_and_environment(org, member, flow):
    """cmd/kosli/tag.go: ``kosli tag flow NAME`` and ``kosli tag env NAME`` (types flow(s),
    env/environment(s)) by name; the environment's tags are what ``list environments --tag`` filters on
    (listEnvironments.go) and the flow's what ``get flow`` shows."""
    create_or_update_environment(AuditContext.system("test"), org, "production", "K8S")
    assert tag(member, "flow", "backend", {"owner": "payments"}).status_code == 200
    assert tag(member, "env", "production", {"region": "eu"}).status_code == 200
    assert tag(member, "environments", "production", {"tier": "gold"}).status_code == 200
    assert Flow.objects.get(pk=flow.pk).tags == {"owner": "payments"}
    assert Environment.objects.get(org=org, name="production").tags == {"region": "eu", "tier": "gold"}
    listed = cli(member, "GET", "/api/v2/environments/acme", query={"tag": "region:eu"}).json()
    assert [env["name"] for env in listed] == ["production"]
    assert cli(member, "GET", "/api/v2/flows/acme/backend").json()["tags"] == {"owner": "payments"}


def test_tag_input_is_checked(org, member, flow):
    """Bad tag input is a 400 naming the member, and nothing is written: a key outside the charset (``:``
    and ``=`` are kosli's separators in ``--tag key:value`` and ``--set key=value``), a non-string value, a
    value over 200 characters, a key both set and removed, more than 50 tags on one object. An unknown type
    is a 404 listing the types csm can tag."""
    cases = [({"bad:key": "x"}, [], "set_tags.bad:key"), ({"ok": 5}, [], "set_tags.ok"),
             ({"ok": "v" * 201}, [], "set_tags.ok"), ({"k": "v"}, ["k"], "remove_tags[0]"),
             ({}, [""], "remove_tags[0]"), ({f"k{i}": "v" for i in range(51)}, [], "set_tags")]
    for set_tags, remove_tags, field in cases:
        answer = tag(member, "flow", "backend", set_tags, remove_tags)
        assert answer.status_code == 400, (set_tags, answer.content)
        assert field in answer.json()["error"]["fields"], answer.json()
    assert Flow.objects.get(pk=flow.pk).tags == {}
    answer = cli(member, "PATCH", "/api/v2/tags/acme/flow/backend", {"set_tags": ["a"], "remove_tags": []})
    assert answer.status_code == 400 and "set_tags" in answer.json()["error"]["fields"]
    answer = tag(member, "widget", "x", {"a": "b"})
    assert answer.status_code == 404 and "environment, flow, repo" in cli_error(answer)
    answer = tag(member, "flow", "nope", {"a": "b"})
    assert answer.status_code == 404 and cli_error(answer) == "Flow 'nope' does not exist in org 'acme'."
    assert not AuditEvent.objects.filter(org=org, action="tags.changed").exists()


def test_tag_permissions_and_other_orgs(org, other_org, member, flow, token_for):
    """A reader (no ``evidence.report``) gets 403 tagging a flow; a snapshotter (``environments.report``
    but not ``environments.edit``) 403 tagging an environment; another org's flow, environment or repo is a
    404 — by name or by id."""
    create_or_update_environment(AuditContext.system("test"), org, "production", "K8S")
    reader = token_for(org, Role.READER)
    assert tag(reader, "flow", "backend", {"a": "b"}).status_code == 403
    assert tag(token_for(org, Role.SNAPSHOTTER), "env", "production", {"a": "b"}).status_code == 403
    assert begin_trail(member, "build-1", GITHUB).status_code == 201
    repo_id = get_repo(member, "kosli-dev/cli").json()["id"]

    stranger = token_for(other_org, Role.ADMIN)
    for kind, identifier in (("flow", "backend"), ("env", "production"), ("repo", repo_id)):
        answer = tag(stranger, kind, identifier, {"a": "b"}, org="globex")
        assert answer.status_code == 404, (kind, answer.content)
    assert get_repo(stranger, "kosli-dev/cli", org="globex").status_code == 404
    assert get_repo(stranger, "", repo_id=repo_id, org="globex").status_code == 404
    assert tag(stranger, "flow", "backend", {"a": "b"}).status_code == 404  # not a member of acme
    assert Flow.objects.get(pk=flow.pk).tags == {}


def test_list_repos_pages_and_filters(org, member, flow, token_for):
    """cmd/kosli/listRepos.go ``listReposOptions.run`` + ``printReposListAsTable``: GET
    /api/v2/repos/{org}?page=&per_page= (always sent) and name / search / provider / repo_id / tag
    (repeatable) / sort_direction; the CLI decodes ``{repos: [map], page: int, total_pages: int,
    total_count: int}`` and prints each repo's name, url, provider and tags. A reader may list; a
    snapshotter may not; more than 50 a page is a 400 naming per_page."""
    for index, (name, provider) in enumerate((("acme/api", "github"), ("acme/cli", "github"),
                                              ("tools/cli-helper", "gitlab"))):
        info = {"url": f"https://{provider}.com/{name}", "name": name, "id": str(100 + index), "provider": provider}
        assert begin_trail(member, f"t{index}", info).status_code == 201
    cli_id = get_repo(member, "acme/cli").json()["id"]
    assert tag(member, "repo", cli_id, {"team": "platform"}).status_code == 200
    reader = token_for(org, Role.READER)

    def names(**query):
        answer = cli(reader, "GET", "/api/v2/repos/acme", query={"page": 1, "per_page": 15, **query})
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert isinstance(body["page"], int) and isinstance(body["total_pages"], int)
        assert isinstance(body["total_count"], int)
        for repo in body["repos"]:
            assert_repo_shape(repo)
        return [repo["name"] for repo in body["repos"]]

    assert names() == ["acme/api", "acme/cli", "tools/cli-helper"]
    assert names(name="acme/cli") == ["acme/cli"]
    assert names(search="CLI") == ["acme/cli", "tools/cli-helper"]
    assert names(provider="gitlab") == ["tools/cli-helper"]
    assert names(repo_id="100") == ["acme/api"]
    assert names(tag="team:platform") == ["acme/cli"] == names(tag="team")
    assert names(tag="team:nope") == []
    assert names(sort_direction="desc") == ["tools/cli-helper", "acme/cli", "acme/api"]

    answer = cli(reader, "GET", "/api/v2/repos/acme", query={"page": 2, "per_page": 2})
    body = answer.json()
    assert (body["page"], body["total_pages"], body["total_count"]) == (2, 2, 3)
    assert [repo["name"] for repo in body["repos"]] == ["tools/cli-helper"]
    body = cli(reader, "GET", "/api/v2/repos/acme", query={"page": 3, "per_page": 2}).json()
    assert body["repos"] == [] and body["page"] == 3  # the CLI prints "No repos were found at page number 3."

    for page, per_page, field in ((1, 51, "per_page"), (1, 0, "per_page"), ("\u00b2", 15, "page"),
                                  (10**30, 15, "page")):
        answer = cli(reader, "GET", "/api/v2/repos/acme", query={"page": page, "per_page": per_page})
        assert answer.status_code == 400 and field in answer.json()["error"]["fields"], (page, per_page)
    answer = cli(reader, "GET", "/api/v2/repos/acme", query={"page": 1, "per_page": 15, "sort_direction": "up"})
    assert answer.status_code == 400 and "sort_direction" in answer.json()["error"]["fields"]
    assert cli(token_for(org, Role.SNAPSHOTTER), "GET", "/api/v2/repos/acme",
               query={"page": 1, "per_page": 15}).status_code == 403


def test_backfill_migration_finds_repositories_in_stored_provenance(org):
    """evidence/migrations/0008: repositories from artifacts and attestations stored before repositories
    existed (rows written directly, as the old code did: no sighting)."""
    flow = Flow.objects.create(org=org, name="legacy")
    trail = Trail.objects.create(org=org, flow=flow, name="old-build")
    Artifact.objects.create(org=org, flow=flow, trail=trail, fingerprint="b" * 64, git_commit=COMMIT,
                            repo_url="https://github.com/acme/legacy", commit_url="https://github.com/acme/c/1")
    Artifact.objects.create(org=org, flow=flow, trail=trail, fingerprint="c" * 64,
                            repo_info={"name": ["malformed"]})
    migration = importlib.import_module("evidence.migrations.0008_repository_backfill")
    migration.backfill(apps, None)
    repo = Repository.objects.get(org=org)
    assert (repo.name, repo.provider) == ("acme/legacy", "github")
    sighting = RepositorySighting.objects.get(repository=repo)
    assert sighting.trail == trail and sighting.git_commit == COMMIT
