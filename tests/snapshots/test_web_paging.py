"""Artifact tables page: an environment, a snapshot and a snapshot's compliance show 100 artifacts a page
(``?artifacts_page=``) with a pager naming the range and the total, so a 10,000-artifact environment
renders one page (docs/benchmarks.md, "Page time")."""

import re

import pytest
from django.urls import reverse

from policies import services as policies
from policies.models import SnapshotCompliance
from tests.policies.helpers import CTX, PROVENANCE_POLICY, ingest, make_env

pytestmark = pytest.mark.django_db(transaction=True)  # the after-snapshot hooks (evaluation) run on commit

NAMES = [f"app-{i:03d}" for i in range(250)]


@pytest.fixture
def big_env(org):
    env = make_env(org, "prod")
    policies.save_policy(CTX, org, "provenance", PROVENANCE_POLICY)
    policies.attach_policies(CTX, org, env, ["provenance"])
    ingest(env, {name: f"{i:064x}" for i, name in enumerate(NAMES)})
    return env


def names_on(html: str) -> list[str]:
    """The artifact names in the page's artifact table (the environment page also lists recent events)."""
    table = re.search(r'<table data-testid="artifact-table">.*?</table>|<table>.*?</table>', html, re.S).group(0)
    return sorted(set(re.findall(r"app-\d{3}", table)))


def pager(html: str) -> str:
    match = re.search(r'<div class="pagination" data-testid="artifact-pager">(.*?)</div>', html, re.S)
    assert match, "no artifact pager"
    return match.group(1)


@pytest.mark.parametrize("page_name", ["environment-detail", "snapshot-detail", "policy-snapshot"])
def test_artifact_tables_show_one_page_with_a_pager(client, owner, org, big_env, page_name):
    client.force_login(owner)
    args = ["acme", "prod"] if page_name == "environment-detail" else ["acme", "prod", 1]
    url = reverse(page_name, args=args)
    if page_name == "policy-snapshot":
        assert SnapshotCompliance.objects.filter(environment=big_env, snapshot_index=1).exists()

    html = client.get(url).content.decode()
    assert names_on(html) == NAMES[:100]
    first = pager(html)
    assert "artifacts 1–100 of 250 · page 1 of 3" in first
    assert "artifacts_page=2" in first and "Previous" not in first

    html = client.get(url, {"artifacts_page": 3, "page": 1}).content.decode()
    assert names_on(html) == NAMES[200:]
    last = pager(html)
    assert "artifacts 201–250 of 250 · page 3 of 3" in last and "Next" not in last
    assert "artifacts_page=2" in last and "page=1" in last.replace("artifacts_page", "")  # other parameters kept

    # a page past the end is the last page; a page that is not a number is the first
    assert names_on(client.get(url, {"artifacts_page": 99}).content.decode()) == NAMES[200:]
    assert names_on(client.get(url, {"artifacts_page": "x"}).content.decode()) == NAMES[:100]


def test_a_short_list_has_no_pager(client, owner, org):
    env = make_env(org, "small")
    ingest(env, {"web": f"{1:064x}"})
    client.force_login(owner)
    html = client.get(reverse("environment-detail", args=["acme", "small"])).content.decode()
    assert 'data-testid="artifact-pager"' not in html and "web" in html


def test_diff_page_counts_every_unchanged_artifact_and_lists_the_first(client, owner, org, monkeypatch):
    from snapshots import views

    monkeypatch.setattr(views, "UNCHANGED_SHOWN", 5)
    env = make_env(org, "prod")
    artifacts = {f"app-{i:03d}": f"{i:064x}" for i in range(12)}
    ingest(env, artifacts)
    ingest(env, {**artifacts, "app-011": f"{99:064x}"})
    client.force_login(owner)
    html = client.get(reverse("snapshot-diff", args=["acme"]),
                      {"env1": "prod", "at1": "#1", "env2": "prod", "at2": "#2"}).content.decode()
    summary = re.search(r"<summary>Not changed \((\d+)\)(.*?)</summary>", html, re.S)
    assert summary and summary.group(1) == "11" and "the first 5 listed" in summary.group(2)
    listed = html[html.index("<summary>Not changed"):]
    assert names_on(listed) == [f"app-{i:03d}" for i in range(5)]


def test_diff_page_pages_long_lists_of_changes(client, owner, org, monkeypatch):
    """A diff of thousands of changes renders one page of each list (?diff_page=), with every list's total."""
    from snapshots import views

    monkeypatch.setattr(views, "DIFF_ROWS", 4)
    env = make_env(org, "prod")
    ingest(env, {f"old-{i:02d}": f"{i:064x}" for i in range(6)})
    ingest(env, {f"new-{i:02d}": f"{100 + i:064x}" for i in range(10)})
    client.force_login(owner)
    query = {"env1": "prod", "at1": "#1", "env2": "prod", "at2": "#2"}
    url = reverse("snapshot-diff", args=["acme"])

    def only_in_2(html):
        table = html[html.index('data-testid="diff-only2"'):]
        return re.findall(r'data-link="artifact">(new-\d+)</a>', table[:table.index("</table>")])

    first = client.get(url, query).content.decode()
    assert "(6)" in first and "(10)" in first  # the totals, whatever the page
    assert 'data-testid="diff-pager"' in first and "page 1 of 3" in first
    assert only_in_2(first) == ["new-00", "new-01", "new-02", "new-03"]
    last = client.get(url, {**query, "diff_page": "3"}).content.decode()
    assert only_in_2(last) == ["new-08", "new-09"] and "page 3 of 3" in last
    assert only_in_2(client.get(url, {**query, "diff_page": "99"}).content.decode()) == ["new-08", "new-09"]
    refused = client.get(url, {**query, "diff_page": "x"})
    assert refused.status_code == 200 and "diff_page" in refused.content.decode()
