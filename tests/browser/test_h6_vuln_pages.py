"""The vulnerability pages in a real browser: from the org's list (running critical first), open a
vulnerability and read its exposure timeline (a bar per window, now marked) and its running table. A
screenshot of the page lands in test-artifacts/screenshots/vulnerability.png."""

from pathlib import Path

import pytest
from django.db import transaction
from playwright.sync_api import expect

from tests.vulns.h6_support import populate

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


class _NoCapture:
    """History's on-commit capture for a transactional test (the live server's): nothing to hold back."""

    def __call__(self, execute=False):
        return transaction.atomic()


@pytest.mark.browser
def test_open_a_vulnerability_from_the_list(page, live_server, sign_in, org, owner):
    populate(org, _NoCapture())
    sign_in(page, owner.email)
    page.goto(live_server.url + "/o/acme/vulnerabilities/")
    rows = page.locator("[data-testid=vulnerabilities] tr[data-testid=vuln-row]")
    expect(rows.first).to_have_attribute("data-group", "CVE-2021-44228")  # running, critical
    expect(page.locator("[data-testid=coverage-unknown]")).to_contain_text("1 running artifact has no SBOM")

    page.get_by_role("link", name="CVE-2019-10906").click()
    page.wait_for_url("**/o/acme/vulnerabilities/CVE-2019-10906/")
    expect(page.locator("h1")).to_contain_text("CVE-2019-10906")
    timeline = page.locator("[data-testid=timeline]")
    expect(timeline.locator("svg[role=img]")).to_be_visible()
    expect(timeline.locator("rect[data-window=open]")).to_have_count(2)  # prod · web, staging · web
    expect(timeline.locator("line[data-now]")).to_have_count(1)
    expect(timeline.locator("figcaption")).to_contain_text("2 windows in 2 environment × artifact lanes")
    running = page.locator("[data-testid=running] tbody tr")
    expect(running).to_have_count(2)
    expect(running.nth(0)).to_contain_text("prod")
    expect(running.nth(1)).to_contain_text("staging")
    expect(running.nth(0)).to_contain_text("pkg:pypi/jinja2@2.10")

    # A window's snapshot link leads to the snapshot it started in.
    running.nth(0).get_by_role("link", name="#1").click()
    page.wait_for_url("**/o/acme/environments/prod/snapshots/1/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.go_back()
    page.screenshot(path=str(SCREENSHOTS / "vulnerability.png"), full_page=True)
