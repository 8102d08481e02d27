"""Unusual activity in a real browser: an owner sets an environment's change windows on its page, a change
reported on a Saturday shows as "outside change window" in the timeline, and the audit log marks the flag
and lists only unusual activity with the page's own "Unusual activity only" filter (no script, under the
strict Content-Security-Policy)."""

from datetime import UTC, datetime

import pytest

from tests.identity.unusual_support import fp, ingest_at
from tests.policies.helpers import make_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


def test_change_windows_and_the_unusual_activity_marks(page, live_server, sign_in, org, owner):
    env = make_env(org, "prod")
    page.add_init_script(WATCH)
    sign_in(page, "owner@example.com")
    page.goto(live_server.url + "/o/acme/environments/prod/")
    panel = page.locator("[data-testid=change-windows]")
    assert "No change windows" in panel.inner_text()
    panel.locator("textarea[name=windows]").fill("mon-fri 09:00-17:00")
    panel.locator("input[name=tz]").fill("Europe/Berlin")
    panel.get_by_role("button", name="Save change windows").click()
    page.wait_for_load_state()
    assert "mon-fri 09:00-17:00 (Europe/Berlin)" in page.locator("[data-testid=change-windows]").inner_text()

    env.refresh_from_db()
    ingest_at(env, {"web": fp(1)}, datetime(2026, 11, 30, 10, 0, tzinfo=UTC))    # Monday 11:00 in Berlin
    ingest_at(env, {"web": fp(2)}, datetime(2026, 12, 5, 2, 30, tzinfo=UTC))     # Saturday 03:30 in Berlin
    page.reload()
    timeline = page.locator("[data-testid=timeline]")
    assert timeline.locator("[data-testid=outside-change-window]").count() == 1
    assert "#2" in timeline.locator("tr", has=page.locator("[data-testid=outside-change-window]")).inner_text()

    page.goto(live_server.url + "/o/acme/audit/")
    marked = page.locator("[data-testid=audit-events] [data-testid=unusual-activity]")
    assert marked.count() == 1
    page.get_by_label("Unusual activity only").check()
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**unusual=**")
    rows = page.locator("[data-testid=audit-events] tbody tr")
    assert rows.count() == 1
    text = rows.first.inner_text()
    assert "unusual activity" in text and "outside its change windows" in text and "Sat 2026-12-05 03:30" in text
    assert page.evaluate("window.__csp") == []
