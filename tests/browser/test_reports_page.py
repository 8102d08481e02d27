"""The Reports page in a real browser: a reader generates a report, the page polls it while a real
Celery worker builds it, then offers the download. Screenshot in test-artifacts/reports/."""

import pytest

from tenants.choices import Role
from tests.reports.conftest import ARTIFACTS


@pytest.mark.browser
def test_reader_generates_and_the_page_offers_the_download(page, live_server, sign_in, celery_worker, org,
                                                          member_of):
    member_of(org, Role.READER, "reader@example.com")
    sign_in(page, "reader@example.com")
    page.goto(live_server.url + "/o/acme/reports/")
    page.select_option("select[name=kind]", "org")
    page.fill("input[name=from]", "2000-01-01")
    page.fill("input[name=to]", "2100-01-01")
    page.click("form[data-testid=report-form] button[type=submit]")
    page.wait_for_load_state()
    # the polling snippet reloads the page once the worker is done; wait for the download link
    page.locator("[data-testid=report-list] a", has_text="PDF").wait_for(timeout=120_000)
    row = page.locator("[data-testid=report-list] tbody tr").first
    assert "done" in row.inner_text() and "reader@example.com" in row.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reports-page.png"), full_page=True)
    with page.expect_download() as download:
        page.click("[data-testid=report-list] a:has-text('PDF')")
    assert download.value.suggested_filename.endswith(".pdf")
