"""The progressive enhancements of app.js and theme.js in a real browser: the theme choice survives a
reload and applies before first paint, the small-screen menu opens to the nav and Sign out, the org
slug follows the name until edited, the action form shows only its type's target field, and a dismissed
confirmation deletes nothing."""

import pytest

from alerts import services as alert_services
from alerts.models import Action
from audit.context import AuditContext
from tests.browser.test_every_page import SCREENSHOTS

pytestmark = pytest.mark.browser


def test_theme_choice_is_remembered_and_applied_before_first_paint(page, live_server, sign_in, org, owner):
    sign_in(page, owner.email)
    page.goto(live_server.url + "/o/acme/")
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") is None
    light_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.select_option("#theme-choice", "dark")
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
    page.reload()
    # theme.js ran in <head>: the attribute is there before app.js (deferred) or any paint.
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
    dark_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_bg != light_bg
    assert page.input_value("#theme-choice") == "dark"
    page.select_option("#theme-choice", "system")
    page.reload()
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") is None
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == light_bg


def test_system_dark_preference_is_followed(browser, live_server):
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto(live_server.url + "/login/")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 20, 27)"
    context.close()


def test_small_screen_menu_reaches_nav_and_sign_out(browser, warm_app, live_server, sign_in, org, owner):
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    sign_in(page, owner.email)
    page.goto(live_server.url + "/o/acme/environments/")
    menu = page.get_by_role("button", name="Menu")
    assert menu.is_visible() and menu.get_attribute("aria-expanded") == "false"
    assert not page.get_by_role("button", name="Sign out").is_visible()
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert page.get_by_role("link", name="Flows").is_visible()
    assert page.get_by_text(owner.email).is_visible()
    assert page.get_by_role("button", name="Sign out").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "phone-menu-open.png"))
    page.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false"
    context.close()


def test_skip_link_is_first_and_moves_focus_to_main(page, live_server, sign_in, org, owner):
    sign_in(page, owner.email)
    page.goto(live_server.url + "/o/acme/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_slug_follows_the_name_until_edited(page, live_server, sign_in, org, owner):
    sign_in(page, owner.email)
    page.goto(live_server.url + "/orgs/new/")
    page.fill("input[name=name]", "Shop Ünïted 2")
    assert page.input_value("input[name=slug]") == "shop-united-2"
    page.fill("input[name=slug]", "shop")
    page.fill("input[name=name]", "Something else")
    assert page.input_value("input[name=slug]") == "shop"


def test_action_form_shows_only_the_chosen_types_target(page, live_server, sign_in, org, owner):
    sign_in(page, owner.email)
    page.goto(live_server.url + "/o/acme/alerts/")
    assert page.is_visible("input[name=url]") and not page.is_visible("input[name=email]")
    page.select_option("select[name=type]", "email")
    assert page.is_visible("input[name=email]") and not page.is_visible("input[name=url]")
    page.select_option("select[name=type]", "slack")
    assert page.is_visible("input[name=url]") and not page.is_visible("input[name=email]")


def test_dismissed_delete_confirmation_deletes_nothing(page, live_server, sign_in, org, owner):
    action, _ = alert_services.create_action(AuditContext.system("test"), org, "mail ops", "email",
                                             email="ops@example.com", triggers=["ON_AGENT_SILENT"])
    sign_in(page, owner.email)
    page.goto(live_server.url + f"/o/acme/alerts/{action.pk}/")
    prompts = []
    page.once("dialog", lambda dialog: (prompts.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Delete").click()
    assert prompts == ["Delete mail ops? Its pending deliveries are skipped."]
    assert page.url.endswith(f"/o/acme/alerts/{action.pk}/")
    assert Action.objects.get(pk=action.pk).deleted_at is None
