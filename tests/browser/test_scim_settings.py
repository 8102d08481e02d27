"""The SCIM settings page in a real browser: an owner creates a SCIM token, copies it from the page, an
identity provider (here: requests over real HTTP) provisions a user with it, the page counts them, and the
owner revokes the token through the confirmation dialog — after which the IdP is refused. The page passes
axe-core (WCAG 2.2 AA) at desktop and phone widths in both themes, as every page does."""

import re

import pytest
import requests

from tests.browser.test_every_page import THEMES, WIDTHS, _check

pytestmark = pytest.mark.browser


def test_scim_token_from_the_page_provisions_then_is_revoked(page, live_server, sign_in, org, owner, tmp_path):
    sign_in(page, owner.email)
    page.goto(live_server.url + f"/o/{org.slug}/settings/scim/")
    assert page.get_by_test_id("scim-base-url").inner_text().endswith("/scim/v2/")
    page.get_by_label("Name").fill("Okta")
    page.get_by_role("button", name="Create SCIM token").click()
    token = page.get_by_test_id("secret-value").inner_text()
    assert re.fullmatch(r"csmscim_[0-9A-Za-z]{40}", token)

    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dana@acme.example",
            "emails": [{"value": "dana@acme.example", "type": "work", "primary": True}], "active": True}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    answer = requests.post(live_server.url + "/scim/v2/Users", json=user, headers=headers, timeout=30)
    assert answer.status_code == 201, answer.text

    page.reload()
    assert page.get_by_test_id("secret-value").count() == 0  # shown once
    assert page.get_by_test_id("scim-counts").inner_text().startswith("1 user")
    assert "Okta" in page.locator("table").first.inner_text()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state()
    assert "revoked" in page.locator("table").first.inner_text()
    refused = requests.get(live_server.url + "/scim/v2/Users", headers=headers, timeout=30)
    assert refused.status_code == 401 and refused.json()["status"] == "401"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("theme", THEMES)
def test_scim_settings_page_is_accessible(browser, warm_app, live_server, sign_in, org, owner, theme, width,
                                          tmp_path):
    from axe_playwright_python.sync_playwright import Axe

    viewport_w, viewport_h = WIDTHS[width]
    context = browser.new_context(viewport={"width": viewport_w, "height": viewport_h}, color_scheme=theme)
    context.set_default_timeout(30000)
    page = context.new_page()
    sign_in(page, owner.email)
    page.goto(live_server.url + f"/o/{org.slug}/settings/scim/")
    page.get_by_role("button", name="Create SCIM token").click()  # the page with a new token shown
    problems = _check(page, Axe(), f"SCIM settings [{width} {theme}]", tmp_path / "scim.png", width, viewport_w,
                      True)
    context.close()
    assert problems == []
