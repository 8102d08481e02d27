"""Web pages: environment list (sparkline, stale badge), environment, snapshot, diff and search pages."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from snapshots.models import Environment
from tenants.choices import Role
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, owner, org):
    client.force_login(owner)
    return client


@pytest.fixture
def journal(make_env, ingest):
    prod = make_env("prod", description="production")
    make_env("staging")
    ingest(prod, server_report(fp(1)))
    ingest(prod, server_report(fp(1), fp(2)))
    return prod


def test_environment_list_shows_counts_sparkline_and_stale_badge(browser, journal, make_env):
    silent = make_env("silent")
    Environment.objects.filter(pk=silent.pk).update(created_at=timezone.now() - timedelta(days=2))
    page = browser.get(reverse("environment-list", args=["acme"]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<polyline" in html and 'aria-label="2 changes in 14 days"' in html
    row = html[html.index(">silent<"):html.index(">silent<") + 300]
    assert "stale" in row
    prod_row = html[html.index(">prod<"):html.index(">prod<") + 300]
    assert "stale" not in prod_row


def test_environment_page_shows_artifacts_timeline_and_events(browser, journal):
    html = browser.get(reverse("environment-detail", args=["acme", "prod"])).content.decode()
    assert fp(2)[:12] in html and "#2" in html and 'data-testid="events"' in html
    assert "+1" in html  # change count of snapshot 2


def test_snapshot_page_and_diff_page(browser, journal):
    html = browser.get(reverse("snapshot-detail", args=["acme", "prod", 2])).content.decode()
    assert "started" in html and "unchanged" in html
    assert browser.get(reverse("snapshot-detail", args=["acme", "prod", 9])).status_code == 404
    diff = browser.get(reverse("snapshot-diff", args=["acme"]), {"env1": "prod", "at1": "#1", "env2": "prod",
                                                                 "at2": "-1"}).content.decode()
    only2 = diff[diff.index('data-testid="diff-only2"'):]
    assert fp(2)[:12] in only2[:only2.index("</table>")]
    bad = browser.get(reverse("snapshot-diff", args=["acme"]), {"env1": "prod", "at1": "#7", "env2": "staging"})
    assert "no #7" in bad.content.decode()


def test_search_page(browser, journal):
    exact = browser.get(reverse("search", args=["acme"]), {"q": fp(2)}).content.decode()
    assert 'data-testid="history"' in exact and "running" in exact
    short = browser.get(reverse("search", args=["acme"]), {"q": "abc"}).content.decode()
    assert "at least 5" in short
    ambiguous = browser.get(reverse("search", args=["acme"]), {"q": "00000"}).content.decode()
    assert 'data-testid="candidates"' in ambiguous


def test_pages_need_membership_and_view_permission(client, journal, make_user, member_of, org, other_org):
    stranger = make_user()
    client.force_login(stranger)
    assert client.get(reverse("environment-list", args=["acme"])).status_code == 404
    snapshotter = member_of(org, Role.SNAPSHOTTER)
    client.force_login(snapshotter)
    assert client.get(reverse("environment-list", args=["acme"])).status_code == 403
