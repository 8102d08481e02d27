"""The Reports page's form for the exposure report in a real browser: choosing the kind shows the
vulnerability field and the optional environment ("Every environment") and range (emptied: the whole
history, not the other kinds' 30 days); an unknown id is shown next to the field; a known one is queued."""

import pytest
from playwright.sync_api import expect

from reports.models import AuditReport
from tests.reports.conftest import ARTIFACTS
from tests.reports.test_exposure_report import import_advisory


@pytest.mark.browser
def test_choosing_the_exposure_report_asks_for_a_vulnerability_and_offers_the_whole_history(
        page, live_server, sign_in, org, owner):
    import_advisory()
    sign_in(page, owner.email)
    page.goto(live_server.url + f"/o/{org.slug}/reports/")
    default_from = page.input_value("input[name=from]")
    assert default_from  # the other kinds' last 30 days
    vulnerability = page.locator("input[name=vulnerability]")
    expect(vulnerability).to_be_hidden()

    page.select_option("select[name=kind]", "exposure")
    expect(vulnerability).to_be_visible()
    expect(page.locator("input[name=fingerprint]")).to_be_hidden()
    assert page.input_value("input[name=from]") == page.input_value("input[name=to]") == ""
    assert page.locator("select[name=environment] option").first.text_content() == "Every environment"
    page.select_option("select[name=kind]", "environment")  # and back: the range returns
    assert page.input_value("input[name=from]") == default_from
    assert page.locator("select[name=environment] option").first.text_content() != "Every environment"

    page.select_option("select[name=kind]", "exposure")
    vulnerability.fill("CVE-2099-0001")
    page.locator("form[data-testid=report-form] button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("form[data-testid=report-form]")).to_contain_text(
        "No known vulnerability has the id 'CVE-2099-0001'")
    expect(page.locator("input[name=vulnerability]")).to_be_visible()  # the kind stays chosen
    assert not AuditReport.objects.exists()

    page.fill("input[name=vulnerability]", "ghsa-h5c8-rqwp-cp95")
    page.locator("form[data-testid=report-form] button[type=submit]").click()
    page.wait_for_url(f"**/o/{org.slug}/reports/")
    expect(page.locator(".messages")).to_contain_text("Exposure report: CVE-2024-22195, all environments, "
                                                      "whole history")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reports-page-exposure.png"), full_page=True)
    report = AuditReport.objects.get()
    assert report.kind == "exposure" and report.params == {"vulnerability": "ghsa-h5c8-rqwp-cp95",
                                                           "group_id": "CVE-2024-22195"}
