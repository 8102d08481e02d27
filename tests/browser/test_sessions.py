"""Sessions in a real browser: two browsers of one person, the sessions page lists both, revoking the other
signs that browser out on its next page, with a notice."""

import pytest

from identity.models import UserSession

pytestmark = pytest.mark.browser


def test_revoke_other_sessions_signs_the_other_browser_out(browser, warm_app, live_server, sign_in, org, owner):
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
    try:
        laptop, phone = (context.new_page() for context in contexts)
        for page in (laptop, phone):
            page.set_default_timeout(30000)
            sign_in(page, "owner@example.com")
        laptop.goto(live_server.url + "/account/sessions/")
        rows = laptop.locator("tbody tr")
        assert rows.count() == 2
        assert laptop.locator("tbody tr[aria-current=true]").get_by_text("this session", exact=True).count() == 1
        assert "Headless Chrome on Linux" in rows.first.inner_text()
        assert "127.0.0.1" in rows.first.inner_text() and "password" in rows.first.inner_text()

        laptop.on("dialog", lambda dialog: dialog.accept())
        laptop.get_by_role("button", name="Revoke all other sessions").click()
        laptop.wait_for_load_state()
        assert "Ended 1 other session." in laptop.locator(".messages").inner_text()
        assert laptop.locator("tbody tr").count() == 1

        phone.goto(live_server.url + "/o/acme/settings/")
        assert "/login/" in phone.url
        assert "This session was ended" in phone.locator(".messages").inner_text()
        assert UserSession.objects.filter(user=owner, ended_at=None).count() == 1
    finally:
        for context in contexts:
            context.close()
