"""Linking an existing csm account to an org's SSO in a real browser against a real OpenID Connect provider
(oidc-provider under Node): the IdP's sign-in alone does not open the account; its owner confirms with the
csm password once, and from then on the IdP signs them in directly."""

import re

import pytest

from identity.models import SsoIdentity
from tenants.choices import Role
from tenants.models import Membership
from tests.browser.test_every_page import _violations
from tests.browser.test_sso_sign_in import idp, idp_login  # noqa: F401 - the provider fixture
from tests.conftest import PASSWORD
from tests.identity.sso_support import configure_sso

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sso_from_login_page(page, live_server, idp, email):  # noqa: F811
    page.goto(live_server.url + "/login/")
    page.fill("#id_sso_email", email)
    page.get_by_role("button", name="Sign in with SSO").click()
    idp_login(page, idp)


def test_an_existing_account_is_linked_with_its_password_then_signs_in_by_sso(page, live_server, org, make_user,
                                                                              idp):  # noqa: F811
    from axe_playwright_python.sync_playwright import Axe

    configure_sso(org, idp.issuer, verified=["acme.test"])
    alice = make_user("alice@acme.test")
    Membership.objects.create(org=org, user=alice, role=Role.MEMBER)

    sso_from_login_page(page, live_server, idp, "alice@acme.test")
    page.wait_for_url(re.compile(r"/sso/link/$"))
    assert page.locator("h1").inner_text() == "An account with this address already exists"
    assert _violations(Axe(), page) == []  # the tour cannot reach this page (it needs an IdP sign-in)
    page.fill("input[name=password]", "not-my-password")
    page.get_by_role("button", name="Confirm and sign in").click()
    page.wait_for_selector("text=That is not the password of this csm account.")
    assert not SsoIdentity.objects.exists()

    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Confirm and sign in").click()
    page.wait_for_url(lambda url: "/sso/" not in url)
    page.goto(live_server.url + "/o/acme/")
    assert page.locator("a.user-email").inner_text() == "alice@acme.test"
    assert SsoIdentity.objects.get(org=org).user == alice

    page.context.clear_cookies()  # signed out here and at the IdP
    sso_from_login_page(page, live_server, idp, "alice@acme.test")
    page.wait_for_url(lambda url: url.startswith(live_server.url) and "/sso/" not in url)
    page.goto(live_server.url + "/o/acme/")
    assert page.locator("a.user-email").inner_text() == "alice@acme.test"
