"""The web pages as a user walks them: every artifact, environment and snapshot named on a page is a
link that opens (followed with the client: 200); the environment page's events are paged and filtered
(whole page without JavaScript, HTMX partial with it); the search box finds by fingerprint prefix,
artifact name, git commit, flow and trail; the first run is guided (agent command, token export, the
missing-environment answer)."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from evidence.models import Artifact, Flow, Trail
from snapshots.models import SnapshotEvent
from tests.snapshots.conftest import fp, server_report

pytestmark = pytest.mark.django_db


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[tuple[str, str]] = []  # (data-link kind, href)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("data-link") and attrs.get("href"):
            self.hrefs.append((attrs["data-link"], attrs["href"]))


def links(html: str) -> list[tuple[str, str]]:
    parser = Links()
    parser.feed(html)
    return parser.hrefs


def follow_all(client, html: str, kinds: set[str]) -> set[str]:
    """Follow every link of the given kinds; each must open (200). Returns the kinds found."""
    found = set()
    for kind, href in set(links(html)):
        if kind in kinds:
            found.add(kind)
            assert client.get(href.split("#")[0]).status_code == 200, href
    return found


@pytest.fixture
def browser(client, owner, org):
    client.force_login(owner)
    return client


@pytest.fixture
def journal(org, make_env, ingest):
    prod = make_env("prod")
    flow = Flow.objects.create(org=org, name="checkout")
    trail = Trail.objects.create(org=org, flow=flow, name="build-42", git_commit="c0ffee1234567890")
    Artifact.objects.create(org=org, flow=flow, trail=trail, fingerprint=fp(1), filename="registry.example/web:1.2",
                            git_commit="c0ffee1234567890", commit_url="https://git.example/c/c0ffee1")
    ingest(prod, server_report(fp(1), names=["registry.example/web:1.2"]))
    ingest(prod, server_report(fp(1), fp(2), names=["registry.example/web:1.2", "sidecar"]))
    ingest(prod, server_report(fp(2), names=["sidecar"]))
    return prod


def test_environment_snapshot_and_search_pages_link_what_they_name(browser, journal):
    env_page = browser.get(reverse("environment-detail", args=["acme", "prod"])).content.decode()
    assert follow_all(browser, env_page, {"artifact", "snapshot"}) == {"artifact", "snapshot"}
    snapshot_page = browser.get(reverse("snapshot-detail", args=["acme", "prod", 2])).content.decode()
    assert follow_all(browser, snapshot_page, {"artifact", "environment", "flow", "trail"}) == {
        "artifact", "environment", "flow", "trail"}
    listing = browser.get(reverse("environment-list", args=["acme"])).content.decode()
    assert follow_all(browser, listing, {"environment", "snapshot"}) == {"environment", "snapshot"}
    found = browser.get(reverse("search", args=["acme"]), {"q": fp(2)}).content.decode()
    assert follow_all(browser, found, {"artifact", "environment", "snapshot"}) == {"artifact", "environment",
                                                                                  "snapshot"}


def test_an_artifact_without_provenance_has_a_page_with_its_names_and_places(browser, journal):
    page = browser.get(reverse("artifact-detail", args=["acme", fp(2)])).content.decode()
    assert "No provenance" in page and "<strong>sidecar</strong>" in page
    assert 'href="/o/acme/environments/prod/"' in page and 'href="/o/acme/environments/prod/snapshots/2/"' in page


def test_environment_list_has_compliance_unauthorized_and_silent(browser, journal):
    html = browser.get(reverse("environment-list", args=["acme"])).content.decode()
    row = html[html.index('data-link="environment">prod</a>'):]
    row = row[:row.index("</tr>")]
    assert 'data-state="unknown"' in row and 'href="/o/acme/policies/environments/prod/"' in row
    # sidecar runs in prod and no flow reported it: unauthorized, counted in the list.
    assert 'data-testid="unauthorized"><span class="badge bad">1</span>' in row
    detail = browser.get(reverse("environment-detail", args=["acme", "prod"])).content.decode()
    standing = detail[detail.index('data-testid="standing"'):]
    assert 'data-state="unknown"' in standing[:600] and "/o/acme/policies/environments/prod/" in standing[:600]


def event_rows(html: str) -> list[str]:
    table = html[html.index('data-testid="events"'):]
    table = table[table.index("<tbody>"):table.index("</tbody>")]
    return re.findall(r"<tr>(.*?)</tr>", table, re.S)


@pytest.fixture
def busy(make_env, ingest):
    """Sixty snapshots, one start each, then the first exits: 61 events."""
    env = make_env("busy")
    running = []
    for n in range(1, 61):
        running.append(fp(1000 + n))
        ingest(env, server_report(*running, names=[f"svc-{i}" for i in range(1, n + 1)]))
    ingest(env, server_report(*running[1:], names=[f"svc-{i}" for i in range(2, 61)]))
    assert SnapshotEvent.objects.filter(environment=env).count() == 61
    return env


def test_events_are_paged_without_javascript(browser, busy):
    url = reverse("environment-detail", args=["acme", "busy"])
    first = browser.get(url).content.decode()
    assert len(event_rows(first)) == 50 and "page 1 of 2" in first and "61 events" in first
    assert "badge bad\">exited" in event_rows(first)[0]  # newest first
    older = re.search(r'href="([^"]*events_page=2[^"]*)"', first).group(1).replace("&amp;", "&")
    second = browser.get(older).content.decode()
    assert len(event_rows(second)) == 11 and "page 2 of 2" in second
    assert "svc-1<" in second and "#1</a>" in second  # the oldest event: started in snapshot 1


def test_events_filter_by_kind_name_fingerprint_and_time(browser, busy):
    url = reverse("environment-detail", args=["acme", "busy"])
    exited = event_rows(browser.get(url, {"kind": "exited"}).content.decode())
    assert len(exited) == 1 and ">svc-1</a>" in exited[0]
    by_name = event_rows(browser.get(url, {"artifact": "SVC-5"}).content.decode())
    assert sorted(re.findall(r">(svc-\d+)</a>", "".join(by_name))) == ["svc-5", *[f"svc-{n}" for n in range(50, 60)]]
    by_prefix = event_rows(browser.get(url, {"artifact": fp(1007)}).content.decode())
    assert len(by_prefix) == 1 and ">svc-7</a>" in by_prefix[0]
    newest = SnapshotEvent.objects.filter(environment=busy).latest("id").created_at
    recent = event_rows(browser.get(url, {"from": newest.strftime("%Y-%m-%dT%H:%M:%S.%f")}).content.decode())
    assert len(recent) == 1
    bad = browser.get(url, {"from": "yesterday", "kind": "rebooted"}).content.decode()
    start = bad.index('data-testid="events-filter"')
    form = bad[start:bad.index("</form>", start)]
    assert "from must be an ISO 8601 time" in form and "kind must be one of" in form
    assert "Fix the filter above" in bad


def test_events_partial_for_htmx_and_redirect_without_it(browser, busy):
    url = reverse("environment-events", args=["acme", "busy"])
    partial = browser.get(url, {"kind": "started", "events_page": "2"}, HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in html and html.strip().startswith("<section id=\"events\"")
    assert len(event_rows(html)) == 10 and "page 2 of 2" in html
    assert 'hx-get="/o/acme/environments/busy/events/?kind=started&amp;events_page=1"' in html
    plain = browser.get(url, {"kind": "started"})
    assert plain.status_code == 302 and plain.url == "/o/acme/environments/busy/?kind=started#events"
    assert browser.get(url, {"events_page": "x"}, HTTP_HX_REQUEST="true").status_code == 200


def search(browser, q):
    return browser.get(reverse("search", args=["acme"]), {"q": q}).content.decode()


def section(html: str, testid: str) -> str:
    if f'data-testid="{testid}"' not in html:
        return ""
    part = html[html.index(f'data-testid="{testid}"'):]
    return part[:part.index("</table>") if "</table>" in part else part.index("</ul>")]


def test_search_groups_by_name_commit_flow_and_trail(browser, journal):
    by_name = search(browser, "WEB:1")
    artifacts = section(by_name, "search-artifacts")
    assert f'href="/o/acme/artifacts/{fp(1)}/"' in artifacts and "registry.example/web:1.2" in artifacts
    assert "Running in" in by_name and section(by_name, "search-reported")
    exited = section(search(browser, "registry.example"), "search-artifacts")
    assert 'data-link="environment">prod</a>' in exited  # ran in prod, no longer running
    commits = section(search(browser, "c0ffee"), "search-commits")
    assert 'href="https://git.example/c/c0ffee1"' in commits and f'href="/o/acme/artifacts/{fp(1)}/"' in commits
    assert 'href="/o/acme/flows/checkout/trails/build-42/"' in commits
    flows = section(search(browser, "check"), "search-flows")
    assert 'href="/o/acme/flows/checkout/"' in flows
    trails = section(search(browser, "build-4"), "search-trails")
    assert 'href="/o/acme/flows/checkout/trails/build-42/"' in trails
    prefix = search(browser, fp(2))
    assert 'data-testid="history"' in prefix and 'data-link="snapshot"' in prefix


def test_search_page_is_bounded_and_helpful(browser, journal):
    empty = browser.get(reverse("search", args=["acme"])).content.decode()
    assert "<h1>Search</h1>" in empty and 'data-testid="search-help"' in empty
    assert "at least 2 characters" in search(browser, "x")
    assert "at most 200 characters" in search(browser, "y" * 201)
    nothing = search(browser, "no-such-thing")
    assert 'data-testid="search-nothing"' in nothing


def test_api_search_keeps_its_answer_shape(browser, journal, owner_api):
    answer = owner_api.get(f"/api/v2/search/acme/sha/{fp(1)}").json()
    assert {"prefix", "fingerprint", "artifact_names", "running_now", "history", "matches"} <= set(answer)
    assert answer["artifact_names"] == ["registry.example/web:1.2"] and answer["running_now"] == []
    assert owner_api.get("/api/v2/search/acme/sha/web").status_code == 400


def test_empty_environments_page_shows_the_agent_command(browser, settings):
    settings.CSM_BASE_URL = "https://csm.example.com"
    html = browser.get(reverse("environment-list", args=["acme"])).content.decode()
    command = re.search(r'data-testid="agent-command">(.*?)</pre>', html, re.S).group(1)
    assert "export CSM_HOST=https://csm.example.com CSM_ORG=acme CSM_API_TOKEN=" in command
    assert "csm-agent snapshot docker prod --auto-environment" in command
    assert 'href="/o/acme/service-accounts/"' in html


def test_new_token_panel_has_the_agent_exports(browser, org, settings):
    settings.CSM_BASE_URL = "https://csm.example.com"
    response = browser.post(reverse("personal-tokens", args=["acme"]), {"name": "laptop"})
    page = browser.get(response.url).content.decode()
    secret = re.search(r'data-testid="secret-value">(csm_[0-9A-Za-z]+)<', page).group(1)
    export = re.search(r'data-testid="secret-export">(.*?)</pre>', page).group(1)
    assert export == f"export CSM_HOST=https://csm.example.com CSM_ORG=acme CSM_API_TOKEN={secret}"
    assert "secret-export" not in browser.get(response.url).content.decode()  # shown once, like the token


def test_report_to_a_missing_environment_says_which_and_how_to_fix(api, org, token_for):
    client = api(token=token_for(org))
    response = client.put("/api/v2/environments/acme/nowhere/report/docker", {"artifacts": []}, format="json")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and "env" in error["fields"]
    assert "Environment 'nowhere' does not exist in org 'acme'" in error["message"]
    assert 'PUT /api/v2/environments/acme and the body {"name": "nowhere", "type": "docker"}' in error["message"]
    assert "--auto-environment" in error["message"]
