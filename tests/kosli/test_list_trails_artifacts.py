"""kosli ``list trails``, ``list artifacts`` and ``get artifact FLOW:COMMIT`` against csm: GETs built as
``internal/requests/requests.go`` builds them (no body, the CLI's headers, the query as ``url.Values.Encode``)
and answers checked against every field the CLI's printers read, with the Go type they assert."""

import hashlib

import pytest

from evidence.models import Flow
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow, report_artifact  # noqa: F401
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

COMMIT = "0fc1ba9876f91b215679f3649b8668085d820ab5"
OTHER_COMMIT = "0fc1bb0000f91b215679f3649b8668085d820ab5"
TEMPLATE = {"trail": [{"name": "jira", "type": "generic"}], "artifacts": []}


def fp(seed) -> str:
    return hashlib.sha256(str(seed).encode()).hexdigest()


@pytest.fixture
def member(org, token_for):
    return token_for(org, Role.MEMBER)


@pytest.fixture
def reporter(api, member):
    return api(token=member)


def test_list_trails_paged_with_compliance_state(org, member, reporter):
    """cmd/kosli/listTrails.go ``listTrailsOptions.run``: GET /api/v2/trails/{org} with ``per_page``,
    ``page`` and ``flow``; ``printTrailsListAsTable`` unmarshals ``listTrailsResponse``: ``data[]`` of
    ``{name string, description string, compliance_state string}`` and ``pagination`` ``{page, page_count,
    total float64}`` ("Showing page 1 of 1, total 1 items"); newest first. An empty page at page 2 is
    ``data: []`` (the CLI prints "No trails were found at page number 2")."""
    make_flow(reporter, template=TEMPLATE)
    for n in range(3):
        begin_trail(reporter, name=f"build-{n}")
    assert attest(reporter, "acme", "backend", "build-2", "generic",
                  {"attestation_name": "jira", "is_compliant": True}).status_code == 201

    answer = cli(member, "GET", "/api/v2/trails/acme", query={"per_page": 2, "page": 1, "flow": "backend"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [t["name"] for t in body["data"]] == ["build-2", "build-1"]
    for trail in body["data"]:
        assert isinstance(trail["name"], str) and isinstance(trail["description"], str)
        assert isinstance(trail["compliance_state"], str)
    assert [t["compliance_state"] for t in body["data"]] == ["COMPLIANT", "INCOMPLETE"]
    assert body["pagination"] == {"page": 1, "per_page": 2, "page_count": 2, "total": 3}
    page2 = cli(member, "GET", "/api/v2/trails/acme", query={"per_page": 2, "page": 2, "flow": "backend"}).json()
    assert [t["name"] for t in page2["data"]] == ["build-0"]
    page3 = cli(member, "GET", "/api/v2/trails/acme", query={"per_page": 2, "page": 3, "flow": "backend"}).json()
    assert page3["data"] == [] and page3["pagination"]["total"] == 3


def test_list_trails_filters(org, other_org, member, reporter, token_for):
    """listTrails.go sends ``fingerprint`` and ``flow_tag`` (``key=value``) as well; listTrails_test.go: a
    fingerprint finds the trails that reported it across flows, a tag the trails of flows tagged so, a
    tag nobody has nothing. Trails of archived flows are left out unless the flow is named. An unknown
    flow is kosli's 404 message; another org's flow too; bad input is a 400 naming the parameter."""
    make_flow(reporter)
    make_flow(reporter, name="frontend")
    begin_trail(reporter, name="b-1")
    begin_trail(reporter, flow="frontend", name="f-1")
    assert report_artifact(reporter, fp(1), trail="b-1").status_code == 201
    Flow.objects.filter(org=org, name="frontend").update(tags={"team": "web"})

    def names(**query):
        answer = cli(member, "GET", "/api/v2/trails/acme", query={"per_page": 20, "page": 1, **query})
        assert answer.status_code == 200, answer.content
        return [t["name"] for t in answer.json()["data"]]

    assert names() == ["f-1", "b-1"]
    assert names(fingerprint=fp(1)) == ["b-1"]
    assert names(flow_tag="team=web") == ["f-1"]
    assert names(flow_tag="non=existing") == []
    assert names(flow="frontend", flow_tag="team=backend") == []

    Flow.objects.filter(org=org, name="frontend").update(archived=True)
    assert names() == ["b-1"]
    assert names(flow="frontend") == ["f-1"]

    assert cli_error(cli(member, "GET", "/api/v2/trails/acme", query={"flow": "nope"})) == (
        "Flow named 'nope' does not exist for organization 'acme'")
    assert cli(token_for(other_org, Role.MEMBER), "GET", "/api/v2/trails/globex",
               query={"flow": "backend"}).status_code == 404
    for bad in ({"per_page": "-1"}, {"page": "0"}, {"per_page": "1000"}, {"flow_tag": "invalid-tag"},
                {"fingerprint": "xyz"}):
        answer = cli(member, "GET", "/api/v2/trails/acme", query=bad)
        assert answer.status_code == 400 and set(answer.json()["error"]["fields"]) == set(bad), answer.content
    assert cli(token_for(org, Role.SNAPSHOTTER), "GET", "/api/v2/trails/acme").status_code == 403


def test_list_artifacts_of_a_flow_and_a_repo(org, other_org, member, reporter, token_for):
    """cmd/kosli/listArtifacts.go ``run``: GET /api/v2/artifacts/{org} with ``page``, ``per_page`` and
    ``flow_name`` (or ``repo_name``); ``printArtifactsListAsTable`` unmarshals a plain array and reads
    ``git_commit.(string)[:7]``, ``filename.(string)``, ``fingerprint.(string)``, ``state.(string)`` and
    ``created_at`` through formattedTimestamp (a float64). Newest first, 15 a page by default.
    listArtifacts_test.go: an empty flow is ``[]``, an unknown flow "Flow named 'non-existing' does not
    exist for organization ...", an unknown repo "Repo 'non-existing' not found"."""
    make_flow(reporter)
    make_flow(reporter, name="empty")
    begin_trail(reporter, commit=COMMIT)
    for n in range(3):
        assert report_artifact(reporter, fp(n), commit=COMMIT).status_code == 201
    no_commit = cli(member, "POST", "/api/v2/artifacts/acme/backend",
                    {"fingerprint": fp(9), "filename": "notes.txt", "repo_info": {"name": "kosli/dev"}})
    assert no_commit.status_code == 201, no_commit.content

    answer = cli(member, "GET", "/api/v2/artifacts/acme", query={"page": 1, "per_page": 3, "flow_name": "backend"})
    assert answer.status_code == 200, answer.content
    rows = answer.json()
    assert [row["fingerprint"] for row in rows] == [fp(9), fp(2), fp(1)]
    for row in rows:
        assert isinstance(row["git_commit"], str) and len(row["git_commit"]) >= 7
        assert isinstance(row["filename"], str) and isinstance(row["fingerprint"], str)
        assert row["state"] in ("COMPLIANT", "NON-COMPLIANT", "INCOMPLETE")
        assert isinstance(row["created_at"], float)
        assert row["flow_name"] == "backend"
    assert rows[0]["git_commit"] == "unknown"  # reported without a commit: the CLI would panic on [:7]
    assert rows[1]["git_commit"] == COMMIT and rows[1]["state"] == "COMPLIANT"
    page2 = cli(member, "GET", "/api/v2/artifacts/acme", query={"page": 2, "per_page": 3, "flow_name": "backend"})
    assert [row["fingerprint"] for row in page2.json()] == [fp(0)]

    assert cli(member, "GET", "/api/v2/artifacts/acme", query={"page": 1, "per_page": 15,
                                                               "flow_name": "empty"}).json() == []
    by_repo = cli(member, "GET", "/api/v2/artifacts/acme", query={"page": 1, "per_page": 15, "repo_name": "kosli/dev"})
    assert [row["fingerprint"] for row in by_repo.json()] == [fp(9)]
    assert cli_error(cli(member, "GET", "/api/v2/artifacts/acme", query={"flow_name": "non-existing"})) == (
        "Flow named 'non-existing' does not exist for organization 'acme'")
    assert cli_error(cli(member, "GET", "/api/v2/artifacts/acme", query={"repo_name": "non-existing"})
                     ).startswith("Repo 'non-existing' not found")
    answer = cli(member, "GET", "/api/v2/artifacts/acme", query={"page": "-1"})
    assert answer.status_code == 400 and "page" in answer.json()["error"]["fields"]
    assert cli(token_for(other_org, Role.MEMBER), "GET", "/api/v2/artifacts/acme").status_code == 404
    assert cli(token_for(org, Role.SNAPSHOTTER), "GET", "/api/v2/artifacts/acme").status_code == 403


def test_get_artifact_by_commit(org, other_org, member, reporter, token_for):
    """cmd/kosli/getArtifact.go ``run``: ``kosli get artifact backend:0fc1b`` sends GET
    /api/v2/artifacts/{org}/{flow}/commit_sha/{sha} (``?trail=`` with --trail); the answer is an array (the
    printer wraps a single object) and ``printArtifactsJsonAsTable`` reads, per artifact, ``filename``,
    ``flow_name``, ``fingerprint``, ``git_commit``, ``commit_url``, ``build_url``, ``html_url``, ``state``
    (strings), ``trail_name`` / ``template_reference_name`` (string or null), ``created_at`` (a number),
    ``running`` / ``exited`` (lists) and ``history`` (``event``, ``timestamp``). A full sha or a unique
    prefix of 5+ digits; a prefix of two commits is a 400 (not a 409, which the CLI retries)."""
    make_flow(reporter)
    begin_trail(reporter, commit=COMMIT)
    begin_trail(reporter, name="build-2", commit=OTHER_COMMIT)
    assert report_artifact(reporter, fp(1), commit=COMMIT).status_code == 201
    assert report_artifact(reporter, fp(2), commit=COMMIT, name="backend-docs").status_code == 201
    assert report_artifact(reporter, fp(3), commit=OTHER_COMMIT, trail="build-2").status_code == 201

    for sha in (COMMIT, COMMIT[:7]):
        answer = cli(member, "GET", f"/api/v2/artifacts/acme/backend/commit_sha/{sha}")
        assert answer.status_code == 200, answer.content
        artifacts = answer.json()
        assert [a["fingerprint"] for a in artifacts] == [fp(2), fp(1)]
        for artifact in artifacts:
            for key in ("filename", "flow_name", "fingerprint", "git_commit", "commit_url", "build_url",
                        "html_url", "state"):
                assert isinstance(artifact[key], str), key
            assert artifact["trail_name"] == "build-1" and isinstance(artifact["template_reference_name"], str)
            assert isinstance(artifact["created_at"], float)
            assert isinstance(artifact["running"], list) and isinstance(artifact["exited"], list)
            assert all(isinstance(e["event"], str) and isinstance(e["timestamp"], float) for e in artifact["history"])
    with_trail = cli(member, "GET", f"/api/v2/artifacts/acme/backend/commit_sha/{OTHER_COMMIT}",
                     query={"trail": "build-2"})
    assert [a["fingerprint"] for a in with_trail.json()] == [fp(3)]

    answer = cli(member, "GET", "/api/v2/artifacts/acme/backend/commit_sha/0fc1b")
    assert answer.status_code == 400 and "ambiguous" in cli_error(answer)
    answer = cli(member, "GET", "/api/v2/artifacts/acme/backend/commit_sha/abcdef1")
    assert answer.status_code == 404 and "does not exist in flow 'backend'" in cli_error(answer)
    answer = cli(member, "GET", "/api/v2/artifacts/acme/backend/commit_sha/xyz12")
    assert answer.status_code == 400 and "commit_sha" in answer.json()["error"]["fields"]
    assert cli(member, "GET", f"/api/v2/artifacts/acme/backend/commit_sha/{COMMIT}",
               query={"trail": "build-2"}).status_code == 404
    assert cli(token_for(other_org, Role.MEMBER), "GET",
               f"/api/v2/artifacts/acme/backend/commit_sha/{COMMIT}").status_code == 404
    assert cli(token_for(org, Role.SNAPSHOTTER), "GET",
               f"/api/v2/artifacts/acme/backend/commit_sha/{COMMIT}").status_code == 403
