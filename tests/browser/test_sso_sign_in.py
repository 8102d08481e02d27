"""SSO in a real browser against a real OpenID Connect provider (oidc-provider under Node): an owner sets up
the org's IdP and verifies the email domain with a test sign-in; then a new person signs in from the login
page with their work email, passes the IdP and comes back signed in, a member with the role of their group."""

import re

import pytest

from identity.models import GroupRoleMapping, SsoDomain
from tenants.choices import Role
from tenants.models import Membership
from tests.identity.sso_support import CLIENT_ID, CLIENT_SECRET, configure_sso, start_provider, stop_provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def idp(live_server, settings):
    settings.CSM_BASE_URL = live_server.url
    settings.CSM_SSO_ALLOW_PRIVATE_ISSUERS = True
    provider = start_provider([live_server.url + "/sso/callback/"])
    yield provider
    stop_provider(provider)


def idp_login(page, idp, login=None):
    """Sign in on the provider's own login page (any password is accepted for a listed account)."""
    page.wait_for_url(re.compile(re.escape(idp.issuer)))
    if login:
        page.fill("input[name=login]", login)
    page.fill("input[name=password]", "their-idp-password")
    page.click("button[type=submit]")


def test_owner_configures_sso_and_verifies_the_domain(page, live_server, sign_in, org, owner, idp):
    sign_in(page, "owner@example.com")
    page.goto(live_server.url + "/o/acme/settings/")
    page.click("nav.tabs >> text=SSO")
    page.fill("input[name=issuer]", idp.issuer)
    page.fill("input[name=client_id]", CLIENT_ID)
    page.fill("input[name=client_secret]", CLIENT_SECRET)
    page.check("input[name=enabled]")
    page.get_by_role("button", name="Save SSO settings", exact=True).click()
    page.wait_for_selector("text=SSO settings saved.")
    assert CLIENT_SECRET not in page.content()

    page.fill("input[name=domain]", "acme.test")
    page.get_by_role("button", name="Add domain", exact=True).click()
    page.wait_for_selector("text=verify it with a test sign-in")
    page.fill("input[name=group]", "csm-admins")
    page.select_option("select[name=role]", "admin")
    page.get_by_role("button", name="Save mapping", exact=True).click()
    page.wait_for_selector("text=Group mapping saved.")

    page.get_by_role("button", name="Test sign-in", exact=True).click()
    idp_login(page, idp, "admin")
    page.wait_for_url(re.compile(r"/o/acme/settings/sso/$"))
    assert page.locator("text=acme.test is verified").is_visible()
    assert SsoDomain.objects.get(org=org, domain="acme.test").verified_at is not None
    assert GroupRoleMapping.objects.get(org=org).role == Role.ADMIN


def test_person_signs_in_with_sso_from_the_login_page(page, live_server, org, idp):
    configure_sso(org, idp.issuer, verified=["acme.test"])
    GroupRoleMapping.objects.create(org=org, group="csm-admins", role=Role.ADMIN)

    page.goto(live_server.url + "/login/")
    page.fill("#id_sso_email", "alice@acme.test")
    page.get_by_role("button", name="Sign in with SSO").click()
    page.wait_for_url(re.compile(re.escape(idp.issuer)))
    assert page.locator("input[name=login]").input_value() == "alice@acme.test"  # the login hint
    idp_login(page, idp)
    page.wait_for_url(re.compile(re.escape(live_server.url)))
    page.goto(live_server.url + "/o/acme/")
    assert page.locator("h1").inner_text() == "Acme Corp"
    membership = Membership.objects.get(org=org, user__email="alice@acme.test")
    assert (membership.role, membership.source) == (Role.ADMIN, "sso")
