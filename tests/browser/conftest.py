"""Browser fixtures (Playwright sync API driving Debian's chromium) against pytest-django's live server.

Reuse them in any tests/browser/ module:

    @pytest.mark.browser
    def test_something(page, live_server, sign_in, org, owner):
        sign_in(page, "owner@example.com")
        page.goto(live_server.url + "/o/acme/")

``live_server`` needs a transactional database (pytest-django gives it one); data made by fixtures
is visible to the server.
"""

import os

import pytest

from tests.conftest import PASSWORD

# Playwright's sync API runs an event loop in this thread; Django would then refuse ORM calls made by
# the test itself (SynchronousOnlyOperation) although they are ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CSM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def warm_app():
    """Import every view module before the browser's first request: the live server imports the URL
    tree lazily on its first request, which on a busy machine can take longer than a page load may."""
    from django.template.loader import get_template
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - the attribute access imports every urls.py and view
    get_template("base.html")


@pytest.fixture
def page(browser, warm_app):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def sign_in(live_server):
    """sign_in(page, email, password=PASSWORD): sign in through the real form; lands on the home page."""

    def do(page, email, password=PASSWORD):
        page.goto(live_server.url + "/login/")
        page.fill("input[name=username]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    return do
