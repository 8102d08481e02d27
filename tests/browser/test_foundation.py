"""The foundation in a real browser: sign in, switch org, create a service-account token, see it
once, find the token.created event in the audit log."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_switch_org_create_token_and_audit_it(page, live_server, sign_in, org, owner, make_org):
    make_org("second", owner, "Second Org")
    sign_in(page, "owner@example.com")
    assert page.url.endswith("/o/acme/")
    assert page.locator("h1").inner_text() == "Acme Corp"

    # switch org with the switcher, and back
    page.click("[data-testid=org-switcher] summary")
    page.click("[data-testid=org-switcher] >> text=Second Org")
    page.wait_for_url(re.compile(r"/o/second/$"))
    assert page.locator("h1").inner_text() == "Second Org"
    page.click("[data-testid=org-switcher] summary")
    page.click("[data-testid=org-switcher] >> text=Acme Corp")
    page.wait_for_url(re.compile(r"/o/acme/$"))

    # create a service account and a token for it
    page.click("nav.mainnav >> text=Settings")
    page.click("text=Service accounts")
    page.fill("input[name=name]", "prod-agent")
    page.select_option("select[name=role]", "snapshotter")
    page.fill("input[name=description]", "Kubernetes prod cluster")
    page.click("text=Create service account")
    page.wait_for_url(re.compile(r"/service-accounts/\d+/$"))
    page.click("text=Create token")
    secret = page.locator("[data-testid=secret-value]").inner_text()
    assert re.fullmatch(r"csm_[0-9A-Za-z]{40}", secret)
    assert page.locator("[data-testid=new-secret] button.copy").is_visible()

    # shown once: a reload shows the prefix only
    page.reload()
    assert page.locator("[data-testid=secret-value]").count() == 0
    assert secret not in page.content()
    assert secret[:12] in page.content()

    # the event is in the audit log
    page.click("nav.mainnav >> text=Audit log")
    page.select_option("select[name=action]", "token.created")
    page.click("form.filters button[type=submit]")
    rows = page.locator("[data-testid=audit-events] tbody tr")
    assert rows.count() == 1
    assert "token.created" in rows.first.inner_text() and "owner@example.com" in rows.first.inner_text()
