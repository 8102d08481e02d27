"""The org switch "require two-factor": only with a factor of one's own, audited; it closes the org's pages
(and its API from the browser session) to members without a second factor — including sessions signed in
before it was switched on — until they enrol; tokens and other orgs are not affected."""

import pytest
from django.test import Client

from audit.context import AuditContext
from audit.models import AuditEvent
from identity import twofactor
from identity.models import OrgIdentitySettings
from tenants.choices import Role
from tenants.models import Membership
from tenants.services import create_api_token
from tests.identity.twofactor_support import client_signed_in, code_from_base32, enrol_totp

pytestmark = pytest.mark.django_db


def _client(user):
    return client_signed_in(user)


def _require(org, owner):
    enrol_totp(owner)
    twofactor.set_require_two_factor(AuditContext.for_user(owner), org, True, owner)


def test_an_owner_without_a_factor_cannot_switch_it_on(owner, org):
    web = _client(owner)
    response = web.post("/o/acme/settings/two-factor/", {"require_two_factor": "on"})
    assert response.status_code == 400
    assert "Add a second factor to your own account first" in response.content.decode()
    assert not OrgIdentitySettings.of(org).require_two_factor


def test_switching_it_on_and_off_is_audited(owner, org):
    enrol_totp(owner)
    web = _client(owner)
    response = web.post("/o/acme/settings/two-factor/", {"require_two_factor": "on"})
    assert response.status_code == 302
    assert OrgIdentitySettings.of(org).require_two_factor
    web.post("/o/acme/settings/two-factor/", {})
    assert not OrgIdentitySettings.of(org).require_two_factor
    changes = AuditEvent.objects.filter(org=org, action="identity.settings_changed").order_by("seq")
    assert [(e.before, e.after) for e in changes] == [
        ({"require_two_factor": False}, {"require_two_factor": True}),
        ({"require_two_factor": True}, {"require_two_factor": False}),
    ]


def test_the_page_lists_members_without_a_factor(owner, org, member_of):
    enrol_totp(owner)
    member_of(org, Role.MEMBER, email="no-factor@example.com")
    page = _client(owner).get("/o/acme/settings/two-factor/").content.decode()
    table = page.split('data-testid="without-two-factor"', 1)[1]
    assert "no-factor@example.com" in table and "owner@example.com" not in table
    tabs = page.split('aria-label="Settings"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="/o/acme/settings/two-factor/" aria-current="page">Two-factor</a>' in tabs
    assert '<a href="/o/acme/settings/">General</a>' in tabs  # only the open tab is marked


def test_only_org_managers_open_the_page(org, member_of):
    member = member_of(org, Role.MEMBER)
    assert _client(member).get("/o/acme/settings/two-factor/").status_code == 403
    assert _client(member_of(org, Role.ADMIN)).get("/o/acme/settings/two-factor/").status_code == 200


def test_a_member_signed_in_before_the_switch_is_sent_to_enrol(owner, org, member_of, other_org):
    member = member_of(org, Role.MEMBER, email="late@example.com")
    Membership.objects.create(org=other_org, user=member, role=Role.MEMBER)  # Globex does not require it
    web = _client(member)
    assert web.get("/o/acme/").status_code == 200
    _require(org, owner)

    blocked = web.get("/o/acme/environments/")
    assert blocked.status_code == 302 and blocked["Location"] == "/account/security/"
    page = web.get("/account/security/").content.decode()
    assert "Acme Corp requires two-factor authentication" in page
    assert web.get("/o/acme/settings/two-factor/").status_code == 302
    assert web.get("/o/globex/").status_code == 200  # only the org that requires it

    api = web.get("/api/v2/orgs/acme/members")
    assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"

    # enrolling opens the pages again
    setup = web.get("/account/security/totp/").content.decode()
    secret = setup.split('data-testid="totp-secret">', 1)[1].split("<", 1)[0]
    assert web.post("/account/security/totp/", {"code": code_from_base32(secret)}).status_code == 302
    assert web.get("/o/acme/environments/").status_code == 200


def test_tokens_are_not_sessions_and_pass(owner, org, member_of, token_for):
    member = member_of(org, Role.MEMBER)
    _require(org, owner)
    _, personal = create_api_token(AuditContext.for_user(member), org, "laptop", user=member)
    client = Client()
    response = client.get("/api/v2/orgs/acme/members", HTTP_AUTHORIZATION=f"Bearer {personal}")
    assert response.status_code == 200
    agent = token_for(org, Role.READER)
    assert client.get("/api/v2/environments/acme", HTTP_AUTHORIZATION=f"Bearer {agent}").status_code == 200


def test_a_non_member_still_gets_the_404(org, owner, make_user):
    _require(org, owner)
    assert _client(make_user()).get("/o/acme/").status_code == 404
