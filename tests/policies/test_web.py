"""Policy web pages: list, editor with validation by line, versions and diff, attachments, an
environment's compliance chart and allowlist, a snapshot's reasons; roles and other orgs."""

import pytest
from django.test import Client
from django.utils.html import escape

from policies import services
from policies.models import AllowlistEntry, Policy, PolicyAttachment
from tenants.choices import Role
from tests.policies.helpers import CTX, POLICY_HEAD, PROVENANCE_POLICY, fp, ingest, make_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_create_edit_diff_and_attach(org, browser, django_capture_on_commit_callbacks):
    make_env(org)
    assert browser.get("/o/acme/policies/").status_code == 200
    bad = browser.post("/o/acme/policies/new/", {"name": "rules", "content": POLICY_HEAD + "artifacts: 3\n"})
    assert bad.status_code == 200 and b"line 2: artifacts: must be a mapping" in bad.content
    created = browser.post("/o/acme/policies/new/", {"name": "rules", "content": PROVENANCE_POLICY})
    assert created.status_code == 302 and created["Location"] == "/o/acme/policies/rules/"
    browser.post("/o/acme/policies/rules/", {"content": PROVENANCE_POLICY.replace("true", "false"),
                                             "comment": "relax"})
    page = browser.get("/o/acme/policies/rules/?from=1&to=2")
    assert b"relax" in page.content and b"-    required: true" in page.content
    assert b"+    required: false" in page.content
    with django_capture_on_commit_callbacks(execute=False):
        attached = browser.post("/o/acme/policies/rules/attach/", {"environment": "prod"})
    assert attached.status_code == 302 and PolicyAttachment.objects.filter(policy__name="rules").exists()
    with django_capture_on_commit_callbacks(execute=False):
        browser.post("/o/acme/policies/rules/detach/", {"environment": "prod",
                                                             "next": "https://evil.example/"})
    assert not PolicyAttachment.objects.exists()


def test_environment_compliance_page_chart_and_allowlist(org, browser, django_capture_on_commit_callbacks):
    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
    ingest(env, {"miner:1": fp(2)}, capture=django_capture_on_commit_callbacks)
    page = browser.get("/o/acme/policies/environments/prod/")
    assert page.status_code == 200 and b"<svg" in page.content and b"non-compliant" in page.content
    with django_capture_on_commit_callbacks(execute=False):
        added = browser.post("/o/acme/policies/environments/prod/allowlist/",
                             {"fingerprint": fp(2), "artifact_name": "miner:1", "reason": "vendor",
                              "expires_at": "2999-01-01T00:00"})
    assert added.status_code == 302
    entry = AllowlistEntry.objects.get()
    assert entry.reason == "vendor" and entry.expires_at.year == 2999
    browser.post("/o/acme/policies/environments/prod/allowlist/", {"fingerprint": "nope", "reason": "x"})
    assert AllowlistEntry.objects.count() == 1
    detail = browser.get("/o/acme/policies/environments/prod/snapshots/1/")
    assert detail.status_code == 200
    assert b"artifact has no provenance (it is not part of any flow)" in detail.content


def test_roles_and_other_orgs(org, other_org, member_of, django_capture_on_commit_callbacks):
    make_env(org)
    services.save_policy(CTX, org, "rules", PROVENANCE_POLICY)
    reader = Client()
    reader.force_login(member_of(org, Role.READER))
    assert reader.get("/o/acme/policies/").status_code == 200
    assert reader.get("/o/acme/policies/rules/").status_code == 200
    assert reader.post("/o/acme/policies/rules/", {"content": PROVENANCE_POLICY + "# x\n"}).status_code == 403
    assert reader.get("/o/acme/policies/new/").status_code == 403
    assert reader.post("/o/acme/policies/environments/prod/allowlist/", {"fingerprint": fp(1),
                                                                         "reason": "x"}).status_code == 403
    stranger = Client()
    stranger.force_login(other_org.memberships.first().user)
    assert stranger.get("/o/acme/policies/").status_code == 404
    assert stranger.get("/o/acme/policies/rules/").status_code == 404
    assert stranger.get("/o/globex/policies/rules/").status_code == 404


def field_error(field: str, *messages: str) -> str:
    """The error list Django renders next to a form field (its id ties it to the input)."""
    items = "".join(f"<li>{escape(message)}</li>" for message in messages)
    return f'<ul class="errorlist" id="id_{field}_error">{items}</ul>'


def test_bad_names_are_explained_not_crashed(org, browser):
    page = browser.post("/o/acme/policies/new/", {"name": "Bad Name!", "content": PROVENANCE_POLICY})
    assert page.status_code == 200
    assert '<ul class="errorlist" id="id_name_error"><li>' in page.content.decode()
    reserved = browser.post("/o/acme/policies/new/", {"name": "new", "content": PROVENANCE_POLICY})
    assert reserved.status_code == 200
    assert field_error("name", "'new' is reserved; choose another name.") in reserved.content.decode()
    assert not Policy.objects.exists()


def test_new_policy_form_shows_the_parser_problems_next_to_the_content(org, browser):
    page = browser.post("/o/acme/policies/new/", {"name": "rules", "description": "mine",
                                                  "content": POLICY_HEAD + "artifacts: 3\n"})
    assert page.status_code == 200
    html = page.content.decode()
    assert field_error("content", "line 2: artifacts: must be a mapping") in html
    assert 'value="rules"' in html and 'value="mine"' in html  # what was typed is kept
    assert not Policy.objects.exists()
    created = browser.post("/o/acme/policies/new/", {"name": "rules", "content": PROVENANCE_POLICY}, follow=True)
    assert created.redirect_chain[-1][0] == "/o/acme/policies/rules/"
    assert b"Policy rules saved as version 1." in created.content


def test_new_version_form_refuses_an_invalid_policy_on_the_page(org, browser):
    services.save_policy(CTX, org, "rules", PROVENANCE_POLICY)
    page = browser.post("/o/acme/policies/rules/", {"content": POLICY_HEAD + "artifacts: 3\n", "comment": "oops"})
    assert page.status_code == 200
    html = page.content.decode()
    assert field_error("content", "line 2: artifacts: must be a mapping") in html and 'value="oops"' in html
    assert Policy.objects.get().latest_version == 1


def test_attach_and_detach_are_post_only_views_with_their_own_urls(org, browser, member_of,
                                                                    django_capture_on_commit_callbacks):
    make_env(org)
    services.save_policy(CTX, org, "rules", PROVENANCE_POLICY)
    reader = Client()
    reader.force_login(member_of(org, Role.READER))
    for url in ("/o/acme/policies/rules/attach/", "/o/acme/policies/rules/detach/",
                "/o/acme/policies/environments/prod/attach/"):
        assert browser.get(url).status_code == 405
        assert reader.post(url, {"environment": "prod", "policy": "rules"}).status_code == 403
    assert not PolicyAttachment.objects.exists()
    unknown = browser.post("/o/acme/policies/rules/attach/", {"environment": "nope"})
    assert unknown.status_code == 200 and field_error("environment", "No such environment.") in unknown.content.decode()
    unknown = browser.post("/o/acme/policies/environments/prod/attach/", {"policy": "nope"})
    assert unknown.status_code == 200 and field_error("policy", "No such policy.") in unknown.content.decode()
    assert not PolicyAttachment.objects.exists()
    with django_capture_on_commit_callbacks(execute=False):
        attached = browser.post("/o/acme/policies/environments/prod/attach/", {"policy": "rules"}, follow=True)
    assert attached.redirect_chain[-1][0] == "/o/acme/policies/environments/prod/"
    assert b"Attached rules; the environment is being re-evaluated." in attached.content
    html = attached.content.decode()
    assert 'action="/o/acme/policies/rules/detach/"' in html and 'data-confirm="Detach rules from prod?"' in html
    with django_capture_on_commit_callbacks(execute=False):
        detached = browser.post("/o/acme/policies/rules/detach/",
                                {"environment": "prod", "next": "/o/acme/policies/environments/prod/"})
    assert detached["Location"] == "/o/acme/policies/environments/prod/"
    assert not PolicyAttachment.objects.exists()


def test_allowlist_form_shows_problems_next_to_fields_and_writes_nothing(org, browser):
    make_env(org)
    cases = [
        ({"fingerprint": "nope", "reason": "x"}, "fingerprint", "The fingerprint must be a 64-hex SHA-256."),
        ({"fingerprint": fp(2), "reason": ""}, "reason", "Give a reason."),
        ({"fingerprint": fp(2), "reason": "x", "expires_at": "2000-01-01T00:00"}, "expires_at",
         "The expiry must be in the future."),
        ({"fingerprint": fp(2), "reason": "x", "expires_at": "soon"}, "expires_at", "Enter a valid date/time."),
    ]
    for data, field, message in cases:
        page = browser.post("/o/acme/policies/environments/prod/allowlist/", data)
        assert page.status_code == 200
        assert field_error(field, message) in page.content.decode(), field
    assert not AllowlistEntry.objects.exists()


def test_allowlist_remove_is_its_own_post_only_url(org, browser, member_of, django_capture_on_commit_callbacks):
    env = make_env(org)
    with django_capture_on_commit_callbacks(execute=False):
        entry = services.add_allowlist_entry(CTX, org, env, fp(2), "miner:1", "vendor")
    url = f"/o/acme/policies/environments/prod/allowlist/{entry.pk}/remove/"
    page = browser.get("/o/acme/policies/environments/prod/").content.decode()
    assert f'action="{url}"' in page and "data-confirm=" in page
    reader = Client()
    reader.force_login(member_of(org, Role.READER))
    assert browser.get(url).status_code == 405 and reader.post(url).status_code == 403
    assert AllowlistEntry.objects.get().removed_at is None
    with django_capture_on_commit_callbacks(execute=False):
        removed = browser.post(url, follow=True)
    assert removed.redirect_chain[-1][0] == "/o/acme/policies/environments/prod/"
    assert b"Allowlist entry removed." in removed.content
    assert AllowlistEntry.objects.get().removed_at is not None


def test_snapshot_page_shows_provenance_and_compliance_per_artifact(org, browser, django_capture_on_commit_callbacks):
    """The snapshot page uses the same enrichment as the API: per artifact its flow and commit (a link
    only for http(s) URLs) or a "no provenance" badge, and compliant / non-compliant with the reasons."""
    from evidence.models import Artifact, Flow, Trail

    def reported(flow_name, fingerprint, name, commit, url):
        flow = Flow.objects.create(org=org, name=flow_name)
        trail = Trail.objects.create(org=org, flow=flow, name="t1")
        Artifact.objects.create(org=org, flow=flow, trail=trail, fingerprint=fingerprint, filename=name,
                                template_name=name, git_commit=commit, commit_url=url)

    env = make_env(org)
    services.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
    with django_capture_on_commit_callbacks(execute=False):
        services.attach_policies(CTX, org, env, ["needs-provenance"])
        reported("web-flow", fp(1), "web", "abcdef1234567890", "https://git.example/c/abcdef1")
        reported("api-flow", fp(3), "api", "99887766aabb", "javascript:alert(1)")
    snapshot = ingest(env, {"web:1": fp(1), "api:1": fp(3), "rogue:1": fp(2)},
                      capture=django_capture_on_commit_callbacks)
    page = browser.get(f"/o/acme/environments/prod/snapshots/{snapshot.index}/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = {name: html[html.index(f'data-link="artifact">{name}</a>'):].split("</tr>")[0]
            for name in ("web:1", "api:1", "rogue:1")}
    assert '<span class="badge ok" data-state="compliant">Compliant</span>' in rows["web:1"]
    assert '<span class="badge ok" data-authorization="provenance">Authorized</span>' in rows["web:1"]
    assert 'flow <a href="/o/acme/flows/web-flow/" data-link="flow">web-flow</a>' in rows["web:1"]
    assert ('<a href="https://git.example/c/abcdef1" rel="noopener noreferrer" title="abcdef1234567890">'
            '<code>abcdef1</code></a>') in rows["web:1"]
    assert 'data-link="flow">api-flow</a>' in rows["api:1"] and "<code>9988776</code>" in rows["api:1"]
    assert "javascript:" not in html
    assert '<span class="badge bad" data-state="non-compliant">Non-compliant</span>' in rows["rogue:1"]
    assert '<span class="badge bad" data-authorization="none">Unauthorized</span>' in rows["rogue:1"]
    assert '<span class="badge warn">no provenance</span>' in rows["rogue:1"]
    assert "needs-provenance: artifact has no provenance (it is not part of any flow)" in rows["rogue:1"]
    # The environment page shows the latest snapshot the same way.
    latest = browser.get("/o/acme/environments/prod/").content.decode()
    assert '<span class="badge warn">no provenance</span>' in latest
    assert "needs-provenance: artifact has no provenance (it is not part of any flow)" in latest
