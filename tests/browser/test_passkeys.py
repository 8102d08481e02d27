"""Passkeys in a real browser: Chromium's virtual authenticator (DevTools WebAuthn domain) stands in for a
device. A person adds a passkey on /account/security/, signs out, and signs in with the password and then
the passkey; a person with only an authenticator app sees no passkey button and signs in with a code."""

import re

import pytest

from audit.models import AuditEvent
from identity.models import WebAuthnCredential
from tests.browser.test_every_page import _violations
from tests.identity.twofactor_support import enrol_totp, totp_code

pytestmark = pytest.mark.browser


@pytest.fixture
def webauthn_origin(settings, live_server):
    """WebAuthn needs a real RP ID: the live server's origin (http://localhost:<port>) is csm's base URL."""
    assert live_server.url.startswith("http://localhost:")
    settings.CSM_BASE_URL = live_server.url
    return live_server.url


def _virtual_authenticator(page):
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True}})
    return cdp


def test_add_a_passkey_then_sign_in_with_it(page, live_server, webauthn_origin, sign_in, org, owner):
    _virtual_authenticator(page)
    sign_in(page, owner.email)
    page.goto(live_server.url + "/account/security/")
    page.fill("input[name=name]", "Work laptop")
    page.click("button:has-text('Add a passkey')")
    page.wait_for_selector("[data-testid=passkeys]")
    assert "Passkey 'Work laptop' added." in page.inner_text(".messages")
    codes = re.findall(r"[a-z2-9]{5}-[a-z2-9]{5}", page.inner_text("[data-testid=recovery-code-list]"))
    assert len(codes) == 10  # the first factor comes with recovery codes
    passkey = WebAuthnCredential.objects.get(user=owner)
    assert passkey.name == "Work laptop" and passkey.transports == ["internal"]

    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login/"))
    sign_in(page, owner.email)
    page.wait_for_url(re.compile(r"/login/two-factor/$"))
    page.click("[data-passkey-button]")
    page.wait_for_url(re.compile(r"/o/acme/"))
    assert page.locator("a.user-email").inner_text() == owner.email

    signed = AuditEvent.objects.filter(org=org, action="user.signed_in").order_by("-seq").first()
    assert signed.after == {"method": "password+webauthn"}
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None


def test_a_passkey_cannot_be_added_twice_from_the_same_authenticator(page, live_server, webauthn_origin, sign_in,
                                                                    org, owner):
    _virtual_authenticator(page)
    sign_in(page, owner.email)
    page.goto(live_server.url + "/account/security/")
    page.fill("input[name=name]", "First")
    page.click("button:has-text('Add a passkey')")
    page.wait_for_selector("[data-testid=passkeys]")
    page.fill("input[name=name]", "Second")
    page.click("button:has-text('Add a passkey')")
    # the browser refuses (excludeCredentials names the one this authenticator holds): the page says so
    page.wait_for_selector("[data-passkey-error]:not([hidden])")
    assert page.inner_text("[data-passkey-error]") == "This device already holds one of your passkeys."
    assert WebAuthnCredential.objects.filter(user=owner).count() == 1


def test_with_only_an_authenticator_app_the_step_asks_for_a_code(page, live_server, webauthn_origin, sign_in, org,
                                                                 owner):
    from axe_playwright_python.sync_playwright import Axe

    device = enrol_totp(owner)
    sign_in(page, owner.email)
    page.wait_for_url(re.compile(r"/login/two-factor/$"))
    assert page.locator("[data-passkey-button]").count() == 0
    assert _violations(Axe(), page) == []  # the one page the every-page tour cannot reach
    page.fill("input[name=code]", totp_code(device.key))
    page.click("button:has-text('Verify')")
    page.wait_for_url(re.compile(r"/o/acme/"))
    assert page.locator("a.user-email").inner_text() == owner.email
