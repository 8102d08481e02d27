"""Alert web pages: create (secret shown once), edit, test send, delivery log, redeliver; roles."""

import pytest
from django.test import Client
from django.utils.html import escape

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
        browser.post(f"/o/acme/alerts/{action.pk}/test/")
    assert len(receiver.requests) == 1
    delivery = Delivery.objects.get()
    log = browser.get(f"/o/acme/alerts/{action.pk}/")
    assert delivery.event_id.encode() in log.content and b"HTTP 200" in log.content
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(f"/o/acme/alerts/{action.pk}/deliveries/{delivery.pk}/redeliver/")
    assert len(receiver.requests) == 2
    browser.post(f"/o/acme/alerts/{action.pk}/disable/")
    assert Action.objects.get().enabled is False
    browser.post(f"/o/acme/alerts/{action.pk}/", {"name": "ops2", "url": receiver.url,
                                                  "triggers": ["ON_EXITED_ARTIFACT"]})
    assert Action.objects.get().name == "ops2" and Action.objects.get().triggers == ["ON_EXITED_ARTIFACT"]
    browser.post(f"/o/acme/alerts/{action.pk}/delete/")
    assert browser.get(f"/o/acme/alerts/{action.pk}/").status_code == 404


def field_error(field: str, message: str) -> str:
    """The error list Django renders next to a form field (its id ties it to the input)."""
    return f'<ul class="errorlist" id="id_{field}_error"><li>{escape(message)}</li></ul>'


def test_invalid_input_is_explained(org, browser):
    page = browser.post("/o/acme/alerts/", {"name": "ops", "type": "webhook", "url": "", "triggers": [
        "ON_STARTED_ARTIFACT"]})
    assert page.status_code == 200
    assert field_error("url", "A webhook or Slack action needs a url.") in page.content.decode()
    assert 'value="ops"' in page.content.decode()  # what was typed is kept
    assert not Action.objects.exists()


def test_create_form_shows_each_service_rule_next_to_its_field(org, browser, receiver):
    make_env(org)
    cases = [
        ({"name": "m", "type": "email", "email": "not-an-email", "triggers": ["ON_STARTED_ARTIFACT"]},
         "email", "Enter a valid email address."),
        ({"name": "m", "type": "webhook", "url": receiver.url}, "triggers", "Give at least one trigger."),
        ({"name": "m", "type": "webhook", "url": receiver.url, "triggers": ["ON_STARTED_ARTIFACT"],
          "environments": ["nope"]}, "environments",
         "Select a valid choice. nope is not one of the available choices."),
        ({"name": "m", "type": "pager", "triggers": ["ON_STARTED_ARTIFACT"]}, "type",
         "Select a valid choice. pager is not one of the available choices."),
    ]
    for data, field, message in cases:
        page = browser.post("/o/acme/alerts/", data)
        assert page.status_code == 200
        assert field_error(field, message) in page.content.decode(), field
    assert not Action.objects.exists()


def test_a_name_taken_is_shown_next_to_the_name(org, browser, receiver):
    data = {"name": "ops", "type": "webhook", "url": receiver.url, "triggers": ["ON_STARTED_ARTIFACT"]}
    assert b"whsec_" in browser.post("/o/acme/alerts/", data).content
    page = browser.post("/o/acme/alerts/", data)
    assert page.status_code == 200 and b"whsec_" not in page.content
    assert field_error("name", "An action named 'ops' exists.") in page.content.decode()
    assert Action.objects.count() == 1


def test_edit_form_refuses_invalid_input_next_to_the_field(org, browser, receiver):
    action = Action.objects.create(org=org, name="ops", type="webhook", url=receiver.url,
                                   triggers=["ON_STARTED_ARTIFACT"])
    page = browser.post(f"/o/acme/alerts/{action.pk}/", {"name": "ops2", "url": "",
                                                         "triggers": ["ON_STARTED_ARTIFACT"]})
    assert page.status_code == 200
    html = page.content.decode()
    assert field_error("url", "A webhook or Slack action needs a url.") in html
    assert '<details class="panel" open>' in html  # the edit form is shown open with its problem
    action.refresh_from_db()
    assert action.name == "ops" and action.url == receiver.url
    # an email action's form has no url field, and its email is checked
    mail = Action.objects.create(org=org, name="mail", type="email", email="ops@example.com",
                                 triggers=["ON_STARTED_ARTIFACT"])
    page = browser.post(f"/o/acme/alerts/{mail.pk}/", {"name": "mail", "email": "nope",
                                                       "triggers": ["ON_STARTED_ARTIFACT"]})
    assert page.status_code == 200 and 'name="url"' not in page.content.decode()
    assert field_error("email", "Enter a valid email address.") in page.content.decode()
    saved = browser.post(f"/o/acme/alerts/{mail.pk}/", {"name": "mail", "email": "sec@example.com",
                                                        "triggers": ["ON_EXITED_ARTIFACT"]}, follow=True)
    assert b"Action saved." in saved.content
    mail.refresh_from_db()
    assert mail.email == "sec@example.com" and mail.triggers == ["ON_EXITED_ARTIFACT"]


OPERATIONS = ["test", "enable", "disable", "delete"]


def test_each_operation_is_its_own_post_only_url(org, browser, member_of, receiver,
                                                 django_capture_on_commit_callbacks):
    action = Action.objects.create(org=org, name="ops", type="webhook", url=receiver.url,
                                   triggers=["ON_STARTED_ARTIFACT"])
    detail = browser.get(f"/o/acme/alerts/{action.pk}/").content.decode()
    for operation in OPERATIONS[:1] + OPERATIONS[2:]:  # an enabled action offers disable, not enable
        assert f'action="/o/acme/alerts/{action.pk}/{operation}/"' in detail
    assert 'data-confirm="Delete ops?' in detail
    admin = Client()
    admin.force_login(member_of(org, Role.ADMIN))
    member = Client()
    member.force_login(member_of(org, Role.MEMBER))
    for operation in OPERATIONS:
        url = f"/o/acme/alerts/{action.pk}/{operation}/"
        assert browser.get(url).status_code == 405
        assert member.post(url).status_code == 403
    assert Action.objects.get().enabled and not Delivery.objects.exists()
    with django_capture_on_commit_callbacks(execute=False):
        assert admin.post(f"/o/acme/alerts/{action.pk}/test/").status_code == 302
    delivery = Delivery.objects.get()
    redeliver = f"/o/acme/alerts/{action.pk}/deliveries/{delivery.pk}/redeliver/"
    assert browser.get(redeliver).status_code == 405 and member.post(redeliver).status_code == 403
    with django_capture_on_commit_callbacks(execute=False):
        assert admin.post(redeliver).status_code == 302
    assert admin.post(f"/o/acme/alerts/{action.pk}/disable/").status_code == 302
    assert Action.objects.get().enabled is False
    page = admin.post(f"/o/acme/alerts/{action.pk}/enable/", follow=True)
    assert b"Action enabled." in page.content and Action.objects.get().enabled is True
    page = admin.post(f"/o/acme/alerts/{action.pk}/delete/", follow=True)
    assert page.redirect_chain[-1][0] == "/o/acme/alerts/" and b"Action ops deleted." in page.content
    assert Action.objects.get().deleted_at is not None


def test_redeliver_is_scoped_to_the_action_and_org(org, other_org, browser, receiver):
    one = Action.objects.create(org=org, name="one", type="webhook", url=receiver.url, triggers=["ON_STARTED_ARTIFACT"])
    two = Action.objects.create(org=org, name="two", type="webhook", url=receiver.url, triggers=["ON_STARTED_ARTIFACT"])
    delivery = Delivery.objects.create(org=org, action=two, event_id="msg_x", event_type="ON_STARTED_ARTIFACT",
                                       environment_name="prod", description="d", body="{}", status="failed")
    assert browser.post(f"/o/acme/alerts/{one.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 404
    stranger = Client()
    stranger.force_login(other_org.memberships.first().user)
    assert stranger.post(f"/o/acme/alerts/{two.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 404
    assert Delivery.objects.get().status == "failed"
    page = browser.post(f"/o/acme/alerts/{two.pk}/deliveries/{delivery.pk}/redeliver/", follow=True)
    assert page.redirect_chain[-1][0] == f"/o/acme/alerts/{two.pk}/" and b"Delivery msg_x queued again." in page.content
    assert Delivery.objects.get().status == "pending"


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
