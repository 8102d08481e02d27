"""kosli CLI conformance: ``kosli create flow``, ``kosli get flow``, ``kosli list flows``, ``kosli begin trail``,
``kosli report artifact`` and ``kosli attest artifact``.

Requests as ``kosliClient.Do`` builds them (``internal/requests/requests.go``): JSON payloads are Go's
``json.Marshal`` of the command's struct (struct order, ``omitempty`` fields left out when empty, a nil
pointer without omitempty as ``null``); multipart bodies are ``createMultipartRequestBody`` (a ``data_json``
field holding the struct's JSON, then the file). Answers are read the way the printers read them."""

import hashlib

import pytest

from audit.models import AuditEvent
from evidence.models import Artifact, Flow, Trail
from tenants.choices import Role
from tests.evidence.conftest import evidence_root  # noqa: F401 - evidence stored per test
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

FP = hashlib.sha256(b"backend:1.4").hexdigest()
FP2 = hashlib.sha256(b"backend:1.5").hexdigest()
COMMIT, COMMIT2 = "0fc1ba9876f91b215679f3649b8668085d820ab5", "5b1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d"
TEMPLATE_YML = b"""version: 1
trail:
  attestations:
    - name: jira-ticket
      type: generic
  artifacts:
    - name: backend
      attestations:
        - name: unit-tests
          type: junit
"""


@pytest.fixture
def member(org, token_for):
    return token_for(org, Role.MEMBER)


def create_flow_with_template(token, name, template=TEMPLATE_YML, description="the backend"):
    """``cmd/kosli/createFlow.go`` ``run`` with ``--template-file`` (or ``--use-empty-template``, which uploads
    ``version: 1``): PUT /api/v2/flows/{org}/template_file, multipart ``data_json`` = ``FlowPayload{name,
    description, visibility omitempty, template omitempty}`` + ``template_file``."""
    return cli(token, "PUT", "/api/v2/flows/acme/template_file",
               form=[("field", "data_json", {"name": name, "description": description}),
                     ("file", "template_file", ("/tmp/kosli/template.yml", template))])


def begin_trail(token, flow, name, commit=COMMIT):
    """``cmd/kosli/beginTrail.go`` ``run``: PUT /api/v2/trails/{org}/{flow}, multipart ``data_json`` =
    ``TrailPayload`` (name; description, user_data, git_commit_info, repo_info, external_urls, origin_url
    all omitempty) — no template file here."""
    payload = {"name": name, "description": "build of the backend",
               "git_commit_info": {"sha1": commit, "message": "Add login", "author": "Dev <dev@example.com>",
                                   "timestamp": 1_764_000_000, "branch": "main"},
               "repo_info": {"url": "https://github.com/acme/backend", "name": "acme/backend", "id": "123",
                             "provider": "github"}}
    return cli(token, "PUT", f"/api/v2/trails/acme/{flow}", form=[("field", "data_json", payload)])


def test_create_flow(org, member):
    """createFlow.go: with a template file (``template_file``); without (deprecated) the JSON ``FlowPayload``
    to PUT /api/v2/flows/{org} with ``template`` = the ``-t`` names plus ``artifact``
    (``injectArtifactIntoTemplateIfNotExisting``). 201 prints "created", 200 "updated"."""
    created = create_flow_with_template(member, "backend")
    assert created.status_code == 201, created.content
    assert create_flow_with_template(member, "backend").status_code == 200
    empty = create_flow_with_template(member, "empty", template=b"version: 1")
    assert empty.status_code == 201, empty.content
    legacy = cli(member, "PUT", "/api/v2/flows/acme",
                 {"name": "legacy", "description": "old style", "template": ["pull-request", "artifact"]})
    assert legacy.status_code == 201, legacy.content
    flow = Flow.objects.get(org=org, name="backend")
    assert flow.description == "the backend"
    assert [a["name"] for a in flow.template["artifacts"]] == ["backend"]
    assert AuditEvent.objects.filter(org=org, action="flow.created").count() == 3

    bad = create_flow_with_template(member, "broken", template=b"version: 1\ntrail: [unclosed")
    assert bad.status_code == 400 and "template is not valid YAML" in cli_error(bad)


def read_like_print_flow_as_table(flow: dict) -> dict:
    """``cmd/kosli/getFlow.go`` ``printFlowAsTable``: ``last_deployment_at`` through formattedTimestamp
    (number, numeric string or null), ``template`` printed with %s, ``tags`` asserted a map unless null."""
    when = flow.get("last_deployment_at")
    assert when is None or isinstance(when, (int, float)) or float(when) >= 0
    assert flow.get("tags") is None or isinstance(flow["tags"], dict)
    return {"name": flow["name"], "description": flow["description"], "visibility": flow.get("visibility"),
            "tags": flow.get("tags") or {}, "template": flow["template"]}


def test_get_flow(org, member, token_for):
    """``cmd/kosli/getFlow.go`` ``run``: GET /api/v2/flows/{org}/{flow}."""
    create_flow_with_template(member, "backend")
    answer = cli(token_for(org, Role.READER), "GET", "/api/v2/flows/acme/backend")
    assert answer.status_code == 200
    shown = read_like_print_flow_as_table(answer.json())
    assert (shown["name"], shown["description"]) == ("backend", "the backend")
    assert shown["template"] == TEMPLATE_YML.decode()  # printed indented when it starts "version: "
    missing = cli(member, "GET", "/api/v2/flows/acme/nope")
    assert missing.status_code == 404 and cli_error(missing)


def test_list_flows(org, member, token_for):
    """``cmd/kosli/listFlows.go`` ``printFlowsListAsTable``: a JSON array (or kosli's paginated ``{data,
    pagination}``); each flow's ``tags`` is asserted ``map[string]interface{}`` unconditionally (null
    panics). ``--name`` sends ``search_by_name`` (and ``case_sensitive=false`` with --ignore-case)."""
    for name in ("backend", "frontend"):
        create_flow_with_template(member, name)
    reader = token_for(org, Role.READER)
    answer = cli(reader, "GET", "/api/v2/flows/acme")
    assert answer.status_code == 200 and isinstance(answer.json(), list)
    for flow in answer.json():
        assert isinstance(flow["tags"], dict)
    assert sorted(f["name"] for f in answer.json()) == ["backend", "frontend"]
    found = cli(reader, "GET", "/api/v2/flows/acme", query={"search_by_name": "front"})
    assert found.status_code == 200
    assert [f["name"] for f in found.json()] == ["frontend"]
    assert cli(reader, "GET", "/api/v2/flows/acme", query={"search_by_name": "FRONT"}).json() == []
    ignoring_case = cli(reader, "GET", "/api/v2/flows/acme", query={"search_by_name": "FRONT",
                                                                     "case_sensitive": "false"})
    assert [f["name"] for f in ignoring_case.json()] == ["frontend"]


def test_begin_trail(org, member):
    """beginTrail.go: 201 prints "begun", 200 "updated"; the trail keeps its commit and repo."""
    create_flow_with_template(member, "backend")
    first = begin_trail(member, "backend", "build-42")
    assert first.status_code == 201, first.content
    assert begin_trail(member, "backend", "build-42").status_code == 200
    trail = Trail.objects.get(org=org, flow__name="backend", name="build-42")
    assert trail.git_commit_info["sha1"] == COMMIT
    assert AuditEvent.objects.filter(org=org, action="trail.created").count() == 1
    missing = begin_trail(member, "nope", "build-1")
    assert missing.status_code == 404 and cli_error(missing)


def attest_artifact(token, fingerprint, commit, trail="build-42"):
    """``cmd/kosli/attestArtifact.go`` ``run``: POST /api/v2/artifacts/{org}/{flow} with
    ``AttestArtifactPayload``: fingerprint, filename, git_commit, git_commit_info, repo_info (omitempty),
    build_url, commit_url, repo_url, template_reference_name, trail_name (external_urls, annotations
    omitempty)."""
    return cli(token, "POST", "/api/v2/artifacts/acme/backend", {
        "fingerprint": fingerprint, "filename": "ghcr.io/acme/backend:1.4", "git_commit": commit,
        "git_commit_info": {"sha1": commit, "message": "Add login", "author": "Dev <dev@example.com>",
                            "timestamp": 1_764_000_000, "branch": "main"},
        "repo_info": {"url": "https://github.com/acme/backend", "name": "acme/backend", "provider": "github"},
        "build_url": "https://ci.example.com/b/42", "commit_url": f"https://github.com/acme/backend/commit/{commit}",
        "repo_url": "https://github.com/acme/backend", "template_reference_name": "backend", "trail_name": trail,
        "annotations": {"team": "shop"}})


def test_attest_artifact(org, member):
    """attestArtifact.go: the CLI reads nothing back; 200/201 is success."""
    create_flow_with_template(member, "backend")
    begin_trail(member, "backend", "build-42")
    answer = attest_artifact(member, FP, COMMIT)
    assert answer.status_code in (200, 201), answer.content
    artifact = Artifact.objects.get(org=org, fingerprint=FP)
    assert (artifact.trail.name, artifact.template_name, artifact.git_commit) == ("build-42", "backend", COMMIT)
    assert AuditEvent.objects.filter(org=org, action="artifact.reported").count() == 1
    bad = cli(member, "POST", "/api/v2/artifacts/acme/backend", {"fingerprint": "nothex", "filename": "x",
                                                                 "git_commit": COMMIT, "git_commit_info": None,
                                                                 "build_url": "", "commit_url": "", "repo_url": "",
                                                                 "template_reference_name": "backend",
                                                                 "trail_name": "build-42"})
    assert bad.status_code == 400 and "fingerprint" in bad.json()["error"]["fields"] and cli_error(bad)


def test_report_artifact(org, member):
    """``cmd/kosli/reportArtifact.go`` ``run``: first ``latestCommit``: GET
    /api/v2/artifacts/{org}/{flow}/{fingerprint}/latest_commit[?branch=BRANCH] — anything but 200 fails
    the command — reading ``latest_commit`` (null, or a string asserted ``.(string)``); then POST
    /api/v2/artifacts/{org}/{flow} with ``ArtifactPayload{fingerprint, filename, git_commit, build_url,
    commit_url, repo_url, commits_list}`` (no trail: the legacy, trail-less report)."""
    create_flow_with_template(member, "backend")
    begin_trail(member, "backend", "build-42")
    first = cli(member, "GET", f"/api/v2/artifacts/acme/backend/{FP}/latest_commit?branch=main")
    assert first.status_code == 200 and first.json() == {"latest_commit": None}
    assert attest_artifact(member, FP, COMMIT).status_code in (200, 201)

    previous = cli(member, "GET", f"/api/v2/artifacts/acme/backend/{FP2}/latest_commit?branch=main")
    assert previous.status_code == 200 and previous.json()["latest_commit"] == COMMIT
    other_branch = cli(member, "GET", f"/api/v2/artifacts/acme/backend/{FP2}/latest_commit?branch=feature")
    assert other_branch.json()["latest_commit"] is None
    assert cli(member, "GET", f"/api/v2/artifacts/acme/backend/{FP2}/latest_commit").json()["latest_commit"] == COMMIT

    reported = cli(member, "POST", "/api/v2/artifacts/acme/backend", {
        "fingerprint": FP2, "filename": "ghcr.io/acme/backend:1.5", "git_commit": COMMIT2,
        "build_url": "https://ci.example.com/b/43", "commit_url": f"https://github.com/acme/backend/commit/{COMMIT2}",
        "repo_url": "https://github.com/acme/backend",
        "commits_list": [{"sha1": COMMIT2, "message": "Fix login", "author": "Dev <dev@example.com>",
                          "timestamp": 1_764_000_100, "branch": "main", "parents": [COMMIT]}]})
    assert reported.status_code in (200, 201), reported.content
    assert Artifact.objects.get(org=org, fingerprint=FP2).git_commit == COMMIT2


def test_flow_commands_roles_and_tenancy(org, other_org, member, token_for):
    """A reader may not create flows, begin trails or report artifacts (403); another org's flow is a 404,
    also for the latest-commit question."""
    reader = token_for(org, Role.READER)
    assert create_flow_with_template(reader, "backend").status_code == 403
    create_flow_with_template(member, "backend")
    assert begin_trail(reader, "backend", "build-1").status_code == 403
    assert attest_artifact(reader, FP, COMMIT).status_code == 403
    other = token_for(other_org, Role.MEMBER)
    assert cli(other, "GET", "/api/v2/flows/acme/backend").status_code == 404
    assert cli(member, "GET", f"/api/v2/artifacts/globex/backend/{FP}/latest_commit").status_code == 404
    assert cli(member, "GET", f"/api/v2/artifacts/acme/nope/{FP}/latest_commit").status_code == 404
