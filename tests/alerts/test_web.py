"""Alert web pages: create (secret shown once), edit, test send, delivery log, redeliver; roles."""

import pytest
from django.test import Client

from alerts.models import Action, Delivery
from tenants.choices import Role
from tests.policies.helpers import make_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_create_test_send_and_log(org, browser, receiver, eager_tasks, django_capture_on_commit_callbacks):
    make_env(org)
    assert browser.get("/o/acme/alerts/").status_code == 200
    page = browser.post("/o/acme/alerts/", {"name": "ops", "type": "webhook", "url": receiver.url,
                                            "triggers": ["ON_STARTED_ARTIFACT", "ON_AGENT_SILENT"],
                                            "environments": ["prod"]})
    assert page.status_code == 200 and b"whsec_" in page.content
    action = Action.objects.get()
    assert action.triggers == ["ON_STARTED_ARTIFACT", "ON_AGENT_SILENT"] and action.environments == ["prod"]
    detail = browser.get(f"/o/acme/alerts/{action.pk}/")
    assert detail.status_code == 200 and b"whsec_" not in detail.content
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(f"/o/acme/alerts/{action.pk}/", {"operation": "test"})
    assert len(receiver.requests) == 1
    delivery = Delivery.objects.get()
    log = browser.get(f"/o/acme/alerts/{action.pk}/")
    assert delivery.event_id.encode() in log.content and b"HTTP 200" in log.content
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(f"/o/acme/alerts/{action.pk}/", {"operation": "redeliver", "delivery": delivery.pk})
    assert len(receiver.requests) == 2
    browser.post(f"/o/acme/alerts/{action.pk}/", {"operation": "disable"})
    assert Action.objects.get().enabled is False
    browser.post(f"/o/acme/alerts/{action.pk}/", {"operation": "update", "name": "ops2", "url": receiver.url,
                                                  "triggers": ["ON_EXITED_ARTIFACT"]})
    assert Action.objects.get().name == "ops2" and Action.objects.get().triggers == ["ON_EXITED_ARTIFACT"]
    browser.post(f"/o/acme/alerts/{action.pk}/", {"operation": "delete"})
    assert browser.get(f"/o/acme/alerts/{action.pk}/").status_code == 404


def test_invalid_input_is_explained(org, browser):
    page = browser.post("/o/acme/alerts/", {"name": "ops", "type": "webhook", "url": "", "triggers": [
        "ON_STARTED_ARTIFACT"]}, follow=True)
    assert b"url: A webhook or Slack action needs a url." in page.content
    assert not Action.objects.exists()


def test_roles_and_other_orgs(org, other_org, member_of, receiver):
    make_env(org)
    member = Client()
    member.force_login(member_of(org, Role.MEMBER))
    assert member.get("/o/acme/alerts/").status_code == 200
    assert member.post("/o/acme/alerts/", {"name": "x", "type": "webhook", "url": receiver.url,
                                           "triggers": ["ON_STARTED_ARTIFACT"]}).status_code == 403
    reader = Client()
    reader.force_login(member_of(org, Role.READER))
    assert reader.get("/o/acme/alerts/").status_code == 403
    stranger = Client()
    stranger.force_login(other_org.memberships.first().user)
    assert stranger.get("/o/acme/alerts/").status_code == 404


def test_bad_web_input_never_crashes(org, browser):
    for data in ({"name": "x" * 101, "type": "email", "email": "a@example.com", "triggers": ["ON_STARTED_ARTIFACT"]},
                 {"name": "m", "type": "email", "email": "not-an-email", "triggers": ["ON_STARTED_ARTIFACT"]},
                 {"name": "m", "type": "webhook", "url": "http://x/" + "a" * 2100,
                  "triggers": ["ON_STARTED_ARTIFACT"]}):
        assert browser.post("/o/acme/alerts/", data).status_code == 200
    assert not Action.objects.exists()
