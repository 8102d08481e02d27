"""The strict Content-Security-Policy in a real browser: the main pages load without a single violation
(scripts and styles all come from static files) and their scripts still work — copy buttons, confirm
prompts, the report form's kind switch."""

import pytest

from tests.test_csp import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile));
"""


def test_main_pages_load_without_csp_violations_and_scripts_work(page, live_server, sign_in, org, owner,
                                                                 django_capture_on_commit_callbacks, tmp_path):
    urls = build_world(org, owner, django_capture_on_commit_callbacks, tmp_path / "evidence")
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(WATCH)
    sign_in(page, "owner@example.com")
    for url in urls:
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        assert "default-src 'self'" in response.headers["content-security-policy"], url
        page.wait_for_load_state("load")
        assert page.evaluate("window.__csp") == [], url
    assert [text for text in console if "Content Security Policy" in text] == []

    # copy button (static app.js)
    page.goto(live_server.url + urls[3])  # a snapshot: fingerprints with copy buttons
    button = page.locator("button.copy").first
    button.click()
    # a selector wait, not wait_for_function: Playwright polls a string predicate with eval, which this
    # very policy refuses (the test then failed whenever the first check came too early)
    page.locator("button.copy[data-copied='1']").first.wait_for()
    assert button.inner_text() == "Copied"

    # confirm prompt (static app.js): dismissing it keeps the member
    page.goto(live_server.url + "/o/acme/tokens/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button.danger")
    assert page.url.endswith("/o/acme/tokens/") and page.locator("button.danger").count() == 1

    # the report form shows only the fields of the chosen kind (static report-list.js)
    page.goto(live_server.url + "/o/acme/reports/")
    page.select_option("select[name=kind]", "artifact")
    assert page.locator("[data-for=artifact]").is_visible()
    assert not page.locator("[data-for=range]").first.is_visible()
    page.select_option("select[name=kind]", "audit")
    assert page.locator("[data-for=range]").first.is_visible()
    assert not page.locator("[data-for=artifact]").is_visible()
    assert page.evaluate("window.__csp") == []


def test_api_docs_render_offline_under_their_own_policy(page, live_server, sign_in, owner, org):
    """Swagger UI and Redoc render from csm's own static files: this machine has no network, so a CDN
    would leave the page blank; and their policy refuses nothing they need."""
    page.add_init_script(WATCH)
    sign_in(page, "owner@example.com")
    response = page.goto(live_server.url + "/api/docs/")
    assert response.status == 200 and "object-src 'none'" in response.headers["content-security-policy"]
    page.locator(".swagger-ui .info .title").filter(has_text="csm API").wait_for(timeout=30_000)
    assert page.locator(".opblock").count() > 10  # the operations of the schema are listed
    assert page.evaluate("window.__csp") == []
    page.goto(live_server.url + "/api/redoc/")
    page.locator("h1").filter(has_text="csm API").wait_for(timeout=30_000)
    # Redoc's bundle hard-codes one image, its "API docs by Redocly" logo: refused, like any other origin
    assert page.evaluate("window.__csp") == ["img-src https://cdn.redoc.ly/redoc/logo-mini.svg "]
