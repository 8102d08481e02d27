"""The artifact page tells who was involved (commit author, pull request and approvers, the CI identity of
each attestation, overrides and their approvers, the token / service account whose report first showed
it running in each environment), and names an artifact the vault does not know by the names it ran under,
with an "Unauthorized — no provenance" callout. A fixed number of queries whatever the number of
attestations and environments."""

import json
import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from snapshots.services.ingest import ingest_report
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, make_flow, report_artifact
from tests.pages import section

pytestmark = pytest.mark.django_db

FP = "e" * 64
UNKNOWN = "f" * 64
COMMIT = "a" * 40


@pytest.fixture
def ci(org, token_for, api):
    return api(token=token_for(org, Role.MEMBER, name="github-actions"))


@pytest.fixture
def web(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def agent_for(org, token_for, api):
    """agent_for(name) -> an API client with a snapshotter token of a service account so named."""
    return lambda name: api(token=token_for(org, Role.SNAPSHOTTER, name=name))


def run_in(agent, env: str, running: dict[str, str]):
    """Create ``env`` (server type) and report ``running`` ({name: fingerprint}) to it, ingested here."""
    assert agent.put("/api/v2/environments/acme", {"name": env, "type": "server"},
                     format="json").status_code in (200, 201)
    body = {"artifacts": [{"digests": {name: fingerprint}, "creationTimestamp": 1_700_000_000}
                          for name, fingerprint in running.items()]}
    response = agent.put(f"/api/v2/environments/acme/{env}/report/server", data=json.dumps(body).encode(),
                         content_type="application/json")
    assert response.status_code == 201, response.content
    ingest_report(response.json()["id"])


@pytest.fixture
def built(ci):
    """A flow, a trail at COMMIT, the artifact FP, and a pull-request attestation with an approver."""
    make_flow(ci)
    begin_trail(ci, commit=COMMIT)
    assert report_artifact(ci, FP, commit=COMMIT).status_code in (200, 201)
    pr = {"url": "https://github.com/acme/backend/pull/42", "merge_commit": COMMIT, "state": "MERGED",
          "author": "alice", "approvers": [{"username": "bob", "state": "APPROVED"}], "title": "Add rate limits"}
    response = attest(ci, "acme", "backend", "build-1", "pull_request",
                      {"attestation_name": "pr", "artifact_fingerprint": FP, "git_provider": "github",
                       "pull_requests": [pr]})
    assert response.status_code == 201, response.content
    return response.json()


def artifact_page(web, fingerprint=FP) -> str:
    response = web.get(reverse("artifact-detail", args=["acme", fingerprint]))
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_artifact_page_names_everyone_involved(ci, built, web, org, token_for, api, agent_for):
    approver = api(token=token_for(org, Role.ADMIN, name="release-manager"))
    attest(ci, "acme", "backend", "build-1", "generic",
           {"attestation_name": "security-review", "artifact_fingerprint": FP, "is_compliant": False})
    override = approver.post("/api/v2/attestations/acme/backend/trail/build-1/override", {
        "attestation_name": "security-review", "artifact_fingerprint": FP, "reason": "risk accepted, RISK-12",
        "new_compliance_status": True}, format="json")
    assert override.status_code == 201, override.content
    run_in(agent_for("k8s-prod-reporter"), "prod", {"backend:1.0": FP})
    run_in(agent_for("staging-agent"), "staging", {"backend:1.0": FP})

    html = artifact_page(web)
    involved = section(html, "involved")
    commits = section(involved, "involved-commits")
    assert COMMIT[:12] in commits and "by <strong>a</strong>" in commits  # the artifact report's commit author
    prs = section(involved, "involved-prs")
    assert "#42" in prs and "Add rate limits" in prs and "alice" in prs and "<strong>bob</strong>" in prs
    reporters = section(involved, "involved-reporters")
    assert "github-actions (" in reporters and "Service account" in reporters
    assert "pr" in reporters and "security-review" in reporters
    assert "release-manager (" in reporters  # the override was reported by the approver
    overrides = section(involved, "involved-overrides")
    assert "release-manager (" in overrides and "risk accepted, RISK-12" in overrides
    environments = section(involved, "involved-environments")
    rows = {row.split("</td>")[0]: row for row in environments.split("<tr><td>")[1:]}
    prod = next(row for name, row in rows.items() if name.startswith("prod"))
    staging = next(row for name, row in rows.items() if name.startswith("staging"))
    assert "k8s-prod-reporter (" in prod and "staging-agent" not in prod
    assert "staging-agent (" in staging and "k8s-prod-reporter" not in staging
    # the owner may manage tokens: the service account is a link to its page
    assert re.search(r'href="/o/acme/service-accounts/\d+/">k8s-prod-reporter \(', prod)


def test_first_reporter_stays_the_one_that_first_showed_it_running(built, web, agent_for):
    run_in(agent_for("first-agent"), "prod", {"backend:1.0": FP})
    later = agent_for("second-agent")
    body = {"artifacts": [{"digests": {"backend:1.0": FP, "sidecar": "1" * 64}, "creationTimestamp": 1_700_000_000}]}
    response = later.put("/api/v2/environments/acme/prod/report/server", data=json.dumps(body).encode(),
                         content_type="application/json")
    assert response.status_code == 201
    ingest_report(response.json()["id"])
    environments = section(artifact_page(web), "involved-environments")
    assert "first-agent (" in environments and "second-agent" not in environments


def test_unknown_fingerprint_page_shows_its_names_where_it_runs_and_unauthorized(web, agent_for):
    run_in(agent_for("k8s-prod-reporter"), "prod", {"cryptominer:latest": UNKNOWN})
    html = artifact_page(web, UNKNOWN)
    h1 = html[html.index("<h1>"):html.index("</h1>")]
    assert "cryptominer:latest" in h1
    callout = section(html, "unauthorized")
    assert "Unauthorized — no provenance" in callout
    assert "cryptominer:latest" in callout and "prod" in callout and "running now" in callout
    environments = section(html, "involved-environments")
    assert "k8s-prod-reporter (" in environments  # who reported it running


def test_known_artifact_has_no_unauthorized_callout(built, web, agent_for):
    run_in(agent_for("k8s-prod-reporter"), "prod", {"backend:1.0": FP})
    html = artifact_page(web)
    assert 'data-testid="unauthorized"' not in html
    assert "backend-image" in html[html.index("<h1>"):html.index("</h1>")]  # named, not only a fingerprint


def test_reader_sees_identities_without_links_to_token_pages(built, web, org, member_of, client, agent_for):
    run_in(agent_for("k8s-prod-reporter"), "prod", {"backend:1.0": FP})
    client.force_login(member_of(org, Role.READER))
    environments = section(artifact_page(client), "involved-environments")
    assert "k8s-prod-reporter (" in environments and "/service-accounts/" not in environments


def _count_queries(web) -> int:
    with CaptureQueriesContext(connection) as queries:
        artifact_page(web)
    return len(queries)


def test_query_count_does_not_grow_with_attestations_or_environments(ci, built, web, org, token_for, api,
                                                                     agent_for, django_assert_max_num_queries):
    run_in(agent_for("agent-0"), "env-0", {"backend:1.0": FP})
    baseline = _count_queries(web)
    approver = api(token=token_for(org, Role.ADMIN, name="release-manager"))
    for n in range(6):
        attest(ci, "acme", "backend", "build-1", "generic",
               {"attestation_name": f"check-{n}", "artifact_fingerprint": FP, "is_compliant": n % 2 == 0})
        attest(ci, "acme", "backend", "build-1", "pull_request",
               {"attestation_name": f"pr-{n}", "artifact_fingerprint": FP, "pull_requests": [
                   {"url": f"https://github.com/acme/backend/pull/{n}", "author": "alice", "approvers": ["bob"]}]})
    for n in (1, 3):
        assert approver.post("/api/v2/attestations/acme/backend/trail/build-1/override", {
            "attestation_name": f"check-{n}", "artifact_fingerprint": FP, "reason": "accepted",
            "new_compliance_status": True}, format="json").status_code == 201
    for n in range(1, 5):
        run_in(agent_for(f"agent-{n}"), f"env-{n}", {"backend:1.0": FP})
    with django_assert_max_num_queries(baseline):
        html = artifact_page(web)
    assert section(html, "involved-environments").count("<tr><td>env-") == 5
    assert "check-5" in section(html, "involved-reporters") and "pr-5" in section(html, "involved-reporters")
    assert section(html, "involved-overrides").count("accepted") == 2
