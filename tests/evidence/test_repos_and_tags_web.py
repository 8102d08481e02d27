"""The repositories' pages and the tag forms of the flow, environment and repository pages."""

import hashlib
import json

import pytest
from django.test import Client

from audit.context import AuditContext
from audit.models import AuditEvent
from evidence.models import Flow, Repository
from snapshots.models import Environment
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role

pytestmark = pytest.mark.django_db

COMMIT = "0fc1ba9876f91b215679f3649b8668085d820ab5"
FP = hashlib.sha256(b"payments:1.0").hexdigest()
REPO = {"url": "https://github.com/acme/payments", "name": "acme/payments", "id": "42", "provider": "github"}


@pytest.fixture
def built(org, reporter, django_capture_on_commit_callbacks):
    """A flow whose trail and artifact name acme/payments, the artifact running in production."""
    assert reporter.put("/api/v2/flows/acme", {"name": "payments"}, format="json").status_code == 201
    trail = {"name": "build-7", "git_commit_info": {"sha1": COMMIT, "message": "m", "author": "a", "branch": "main",
                                                    "timestamp": 1, "url": f"{REPO['url']}/commit/{COMMIT}"},
             "repo_info": REPO}
    answer = reporter.put("/api/v2/trails/acme/payments", {"data_json": json.dumps(trail)}, format="multipart")
    assert answer.status_code == 201, answer.content
    answer = reporter.post("/api/v2/artifacts/acme/payments", {
        "fingerprint": FP, "filename": "payments:1.0", "git_commit": COMMIT, "trail_name": "build-7",
        "template_reference_name": "payments", "repo_info": REPO,
        "commit_url": f"{REPO['url']}/commit/{COMMIT}"}, format="json")
    assert answer.status_code == 201, answer.content
    env, _ = create_or_update_environment(AuditContext.system("test"), org, "production", "server")
    raw = json.dumps({"artifacts": [{"digests": {"payments": FP}, "creationTimestamp": 1_700_000_000}]}).encode()
    with django_capture_on_commit_callbacks(execute=False):
        report, _ = accept_report(AuditContext.system("test"), env, env.type, raw)
    ingest_report(report.pk)
    return Repository.objects.get(org=org)


@pytest.fixture
def browser_for(org, member_of):
    def make(role):
        client = Client()
        client.force_login(member_of(org, role))
        return client
    return make


def test_repository_pages(built, browser_for):
    """The list names the repository; its page shows its flow, the commit seen (linked to the provider),
    the trail and artifact, and where the artifact runs now; the trail and artifact pages link to it."""
    reader = browser_for(Role.READER)
    page = reader.get("/o/acme/repos/").content.decode()
    assert "acme/payments" in page and f"/o/acme/repos/{built.pk}/" in page
    assert "acme/payments" not in reader.get("/o/acme/repos/?q=nothing-like-it").content.decode()
    assert "acme/payments" in reader.get("/o/acme/repos/?provider=github").content.decode()
    page = reader.get(f"/o/acme/repos/{built.pk}/").content.decode()
    assert "/o/acme/flows/payments/" in page and "build-7" in page and COMMIT[:12] in page
    assert f"/o/acme/artifacts/{FP}/" in page and "/o/acme/environments/production/" in page
    assert "Set tag" not in page  # a reader may not tag
    link = f'href="/o/acme/repos/{built.pk}/" data-link="repository"'
    assert link in reader.get("/o/acme/flows/payments/trails/build-7/").content.decode()
    assert link in reader.get(f"/o/acme/artifacts/{FP}/").content.decode()
    assert link in reader.get("/o/acme/flows/payments/").content.decode()


def test_repository_of_another_org_is_a_404(built, other_org, make_user):
    from tenants.models import Membership

    stranger = make_user()
    Membership.objects.create(org=other_org, user=stranger, role=Role.OWNER)
    client = Client()
    client.force_login(stranger)
    assert client.get(f"/o/globex/repos/{built.pk}/").status_code == 404
    assert client.get(f"/o/acme/repos/{built.pk}/").status_code == 404
    assert client.post(f"/o/globex/tags/repo/{built.pk}/", {"key": "a", "value": "b"}).status_code == 404


def test_tag_forms_set_and_remove(org, built, browser_for):
    """A member sets and removes tags from the flow, environment and repository pages (audited); a bad key
    comes back as a message on the page, nothing written."""
    member = browser_for(Role.MEMBER)
    for kind, identifier, page in (("flow", "payments", "/o/acme/flows/payments/"),
                                   ("environment", "production", "/o/acme/environments/production/"),
                                   ("repo", str(built.pk), f"/o/acme/repos/{built.pk}/")):
        assert "Set tag" in member.get(page).content.decode()
        answer = member.post(f"/o/acme/tags/{kind}/{identifier}/", {"key": "team", "value": "payments"})
        assert answer.status_code == 302 and answer["Location"] == page
        shown = member.get(page).content.decode()
        assert "team=payments" in shown and "Tag team=payments set." in shown
        assert member.post(f"/o/acme/tags/{kind}/{identifier}/", {"remove": "team"}).status_code == 302
    assert Flow.objects.get(org=org, name="payments").tags == {}
    assert Environment.objects.get(org=org, name="production").tags == {}
    assert Repository.objects.get(pk=built.pk).tags == {}
    assert AuditEvent.objects.filter(org=org, action="tags.changed").count() == 6

    answer = member.post("/o/acme/tags/flow/payments/", {"key": "bad key", "value": "x"}, follow=True)
    assert "Tag key &#x27;bad key&#x27; is invalid" in answer.content.decode()
    assert Flow.objects.get(org=org, name="payments").tags == {}


def test_tag_form_needs_the_types_permission(org, built, browser_for):
    """A reader cannot tag anything (403); a member can tag an environment (environments.edit) — and a
    GET of the form's URL is a 405."""
    reader = browser_for(Role.READER)
    assert reader.post("/o/acme/tags/flow/payments/", {"key": "a", "value": "b"}).status_code == 403
    assert reader.post("/o/acme/tags/environment/production/", {"key": "a", "value": "b"}).status_code == 403
    assert "Set tag" not in reader.get("/o/acme/environments/production/").content.decode()
    assert browser_for(Role.MEMBER).get("/o/acme/tags/flow/payments/").status_code == 405
    assert browser_for(Role.MEMBER).post("/o/acme/tags/flow/nope/", {"key": "a"}).status_code == 404
    assert browser_for(Role.MEMBER).post("/o/acme/tags/widget/x/", {"key": "a"}).status_code == 404
    assert Flow.objects.get(org=org, name="payments").tags == {}
