"""The Reports page in a real browser: a reader sends the Generate form, the button is disabled while it
is sent, the page answers with "Report queued" and the new row shows its progress (queued, then running
with percent and step) and then the download link, without reloading the page, while a real Celery
worker builds it. Screenshots in test-artifacts/reports/."""

import pytest
from playwright.sync_api import expect

from journal.models import JournalHead
from tenants.choices import Role
from tests.conftest import real_worker
from tests.reports.conftest import ARTIFACTS, row_locked


@pytest.mark.browser
def test_reader_generates_and_sees_progress_then_the_download(page, live_server, sign_in, org, member_of):
    member_of(org, Role.READER, "reader@example.com")
    sign_in(page, "reader@example.com")
    page.goto(live_server.url + "/o/acme/reports/")
    page.select_option("select[name=kind]", "org")
    page.fill("input[name=from]", "2000-01-01")
    page.fill("input[name=to]", "2100-01-01")
    button = page.locator("form[data-testid=report-form] button[type=submit]")

    # The form is sent from the page itself, and the button read in the same turn: disabled, saying so
    # (a Playwright click would wait for the navigation it starts).
    state = page.evaluate("""() => {
        const form = document.querySelector("form[data-testid=report-form]");
        const button = form.querySelector("button[type=submit]");
        form.requestSubmit(button);
        return [button.disabled, button.textContent];
    }""")
    assert state == [True, "Queuing…"]
    page.wait_for_url("**/o/acme/reports/")
    expect(page.locator(".messages")).to_contain_text("Report queued: “Org compliance summary")
    row = page.locator("[data-testid=report-list] tbody tr").first
    expect(row.locator("[data-testid=report-status]")).to_contain_text("queued")
    expect(button).to_be_enabled()
    page.evaluate("window.csmNotReloaded = true")  # gone if the page reloads

    # No worker until now; it claims the report and waits for the journal head (held here) to store it.
    head = JournalHead.objects.get(org=org)
    with real_worker(["reports"]):
        with row_locked(JournalHead, head.pk):
            expect(row.locator("[data-testid=report-status]")).to_contain_text("running", timeout=120_000)
            expect(row.locator("[data-testid=report-progress]")).to_contain_text("%")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "reports-page-running.png"), full_page=True)
        expect(row.locator("a", has_text="PDF")).to_be_visible(timeout=120_000)
    assert page.evaluate("window.csmNotReloaded") is True
    assert "done" in row.inner_text() and "reader@example.com" in row.inner_text()
    expect(page.locator(".messages")).not_to_contain_text("Generating")
    page.screenshot(path=str(ARTIFACTS / "reports-page.png"), full_page=True)
    with page.expect_download() as download:
        row.locator("a", has_text="PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
