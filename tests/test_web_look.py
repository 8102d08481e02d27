"""The look of every page, as users meet it: relative times, the favicon, the current page marked for
screen readers, the members page never offering to remove the last owner, and the warnings that keep
csm from showing as fine what it cannot vouch for (emails only printed, loopback webhooks)."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import Client
from django.utils import timezone

from alerts import services as alert_services
from audit.context import AuditContext
from tenants.choices import Role
from tenants.models import Membership

pytestmark = pytest.mark.django_db


def render_ago(value):
    return Template("{% load csm %}{{ value|ago }}").render(Context({"value": value}))


def test_ago_says_just_now_under_a_minute_then_minutes():
    now = timezone.now()
    assert render_ago(now) == "just now"
    assert render_ago(now - timedelta(seconds=59)) == "just now"
    assert render_ago(now - timedelta(minutes=5, seconds=3)) == "5\xa0minutes ago"
    assert render_ago(now - timedelta(days=3, hours=2)) == "3\xa0days ago"
    assert render_ago(None) == "never"


@pytest.fixture
def web(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_favicon_is_served_and_linked(client, org, web):
    answer = client.get("/favicon.ico", follow=True)
    assert answer.status_code == 200
    assert answer.redirect_chain and answer.redirect_chain[-1][0].endswith("csm/favicon.svg")
    assert b"<svg" in b"".join(answer.streaming_content if answer.streaming else [answer.content])
    page = web.get("/o/acme/").content.decode()
    assert '<link rel="icon" href="/static/csm/favicon.svg" type="image/svg+xml">' in page


def test_current_page_is_marked_with_a_plain_aria_current(org, web):
    page = web.get("/o/acme/members/").content.decode()
    assert '<a href="/o/acme/members/" aria-current="page">Members</a>' in page
    assert "&quot;page&quot;" not in page
    # The main nav marks the Settings section, the settings tab strip the Members tab: nothing else.
    assert '<a href="/o/acme/settings/" aria-current="page">Settings</a>' in page
    assert page.count('aria-current="page"') == 2
    environments = web.get("/o/acme/environments/").content.decode()
    assert '<a href="/o/acme/environments/" aria-current="page">Environments</a>' in environments


def test_skip_link_leads_to_main(org, web):
    page = web.get("/o/acme/").content.decode()
    assert page.index('class="skip-link" href="#main"') < page.index('<nav class="mainnav"')
    assert '<main id="main"' in page


def test_members_page_offers_nothing_against_the_last_owner(org, owner, web, member_of):
    member = member_of(org, Role.MEMBER, "dev@example.com")
    page = web.get("/o/acme/members/").content.decode()
    own = Membership.objects.get(org=org, user=owner)
    theirs = Membership.objects.get(org=org, user=member)
    assert f"/o/acme/members/{own.pk}/remove/" not in page
    assert f"/o/acme/members/{own.pk}/role/" not in page
    assert "(last owner)" in page
    assert f"/o/acme/members/{theirs.pk}/remove/" in page
    # With a second owner, either owner may be demoted or removed again.
    theirs.role = Role.OWNER
    theirs.save()
    page = web.get("/o/acme/members/").content.decode()
    assert f"/o/acme/members/{own.pk}/remove/" in page and f"/o/acme/members/{theirs.pk}/remove/" in page
    assert "(last owner)" not in page


def test_email_action_warns_that_emails_are_only_printed(org, web, settings):
    ctx = AuditContext.system("test")
    email, _ = alert_services.create_action(ctx, org, "mail ops", "email", email="ops@example.com",
                                            triggers=["ON_AGENT_SILENT"])
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    page = web.get(f"/o/acme/alerts/{email.pk}/").content.decode()
    assert "Emails are printed to the server console, not sent." in page
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    page = web.get(f"/o/acme/alerts/{email.pk}/").content.decode()
    assert "printed to the server console" not in page


def test_loopback_webhook_refusal_names_the_setting(org, web, settings):
    settings.CSM_WEBHOOK_ALLOW_PRIVATE = False
    page = web.post("/o/acme/alerts/", {"name": "local", "type": "webhook", "url": "http://127.0.0.1:9/hook",
                                        "triggers": ["ON_AGENT_SILENT"]})
    assert page.status_code == 200
    assert "a loopback address" in page.content.decode() and "CSM_WEBHOOK_ALLOW_PRIVATE=1" in page.content.decode()
