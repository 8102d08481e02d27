"""In Chromium: the dashboard loads without a CSP violation, and the environment page's events are
filtered and paged by HTMX in place (no page load), with the same answers as without JavaScript."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_csp import WATCH
from tests.policies.helpers import fp, ingest, make_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_events_filter_in_place_with_htmx(page, live_server, sign_in, org, owner, django_capture_on_commit_callbacks):
    env = make_env(org, "prod")
    running = {}
    for n in range(1, 56):  # 55 starts, then one exit: two pages of events
        running[f"svc-{n}"] = fp(n)
        ingest(env, running, capture=django_capture_on_commit_callbacks)
    running.pop("svc-1")
    ingest(env, running, capture=django_capture_on_commit_callbacks)

    page.add_init_script(WATCH)
    sign_in(page, "owner@example.com")
    dashboard = page.goto(live_server.url + "/o/acme/")
    assert dashboard.status == 200 and page.locator("[data-env=prod]").count() == 1
    page.click("[data-env=prod] a[data-link=environment]")
    page.wait_for_url("**/o/acme/environments/prod/")
    page.wait_for_load_state("load")  # htmx (a deferred static script) has run
    assert page.evaluate("typeof window.htmx") == "object"
    page.evaluate("window.__same_page = true")
    assert page.locator("[data-testid=events] tbody tr").count() == 50

    page.select_option("#ev-kind", "exited")
    page.click("[data-testid=events-filter] button[type=submit]")
    expect(page.locator("[data-testid=events] tbody tr")).to_have_count(1)
    assert "svc-1" in page.locator("[data-testid=events] tbody tr").inner_text()
    assert page.evaluate("window.__same_page") is True  # swapped in place, not a new page

    page.select_option("#ev-kind", "")
    page.click("[data-testid=events-filter] button[type=submit]")
    expect(page.locator("[data-testid=events] tbody tr")).to_have_count(50)
    page.click("[data-testid=events-pager] a[rel=next]")
    expect(page.locator("[data-testid=events] tbody tr")).to_have_count(6)
    assert "page 2 of 2" in page.locator("[data-testid=events-pager]").inner_text()
    assert page.evaluate("window.__same_page") is True
    assert page.evaluate("window.__csp") == []
