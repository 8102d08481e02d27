"""The vulnerability web pages (h6): the org's list (running exposure first, worst first; suppressed and
coverage-unknown counts), one vulnerability by any alias (timeline chart, running, history, suppressed,
coverage unknown, references through the safe-link guard), the artifact and environment pages'
"Vulnerabilities" sections, and the component search — for a populated org, and for another org, which
sees none of it."""

import re
import xml.etree.ElementTree as ET
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from evidence.models import Attestation
from reports.models import AuditReport
from snapshots.services.environments import create_or_update_environment, join_environment
from tenants.choices import Role
from tests.pages import section
from tests.vulns.exposure_support import advisory, fp, match, sbom, vex_statement
from tests.vulns.pages_support import populate

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(org, django_capture_on_commit_callbacks):
    return populate(org, django_capture_on_commit_callbacks)


@pytest.fixture
def web(client, owner):
    client.force_login(owner)
    return client


def get(client, name, *args, org="acme", status=200, **params):
    response = client.get(reverse(name, args=[org, *args]), params)
    assert response.status_code == status, (response.status_code, response.content[:500])
    return unescape(response.content.decode())


def rows(html: str) -> list[tuple[str, str]]:
    """(group id, state) of every vulnerability row, in page order."""
    return [(group, state) for state, group in
            re.findall(r'data-testid="vuln-row" data-state="([\w-]+)" data-group="([^"]+)"', html)]


# --- the list ------------------------------------------------------------------------------------------

def test_list_puts_running_exposure_first_worst_first_then_past(web, data):
    html = get(web, "vulnerability-list")
    assert rows(html) == [("CVE-2021-44228", "running"),   # critical, running in prod
                          ("CVE-2019-10906", "running"),   # high, prod and staging
                          ("CVE-2020-28493", "running"),   # unknown severity: listed, last among running
                          ("CVE-2021-23337", "past")]      # ran in prod until snapshot #2
    table = section(html, "vulnerabilities")
    assert "GHSA-462w-v97r-4m45" in table and "PYSEC-2019-217" in table  # aliases beside the id
    jinja = table[table.index('data-group="CVE-2019-10906"'):table.index('data-group="CVE-2020-28493"')]
    assert ">prod<" in jinja and ">staging<" in jinja and "2.10.1" in jinja and "2026-03-02" in jinja
    assert "unknown severity" in table  # never shown as low


def test_list_states_coverage_unknown_and_suppressed_counts(web, data):
    html = get(web, "vulnerability-list")
    assert "1 running artifact has no SBOM: exposure unknown" in section(html, "coverage-unknown")
    assert ">0<" in section(html, "suppressed-count")


def test_list_filters(web, data):
    assert [g for g, _ in rows(get(web, "vulnerability-list", environment="staging"))] == [
        "CVE-2019-10906", "CVE-2020-28493"]
    assert [g for g, _ in rows(get(web, "vulnerability-list", severity="critical"))] == ["CVE-2021-44228"]
    running = rows(get(web, "vulnerability-list", running="1"))
    assert "CVE-2021-23337" not in {g for g, _ in running} and {s for _, s in running} == {"running"}
    # An environment of the org that does not exist: the field says so, nothing is listed.
    html = get(web, "vulnerability-list", environment="nowhere")
    assert "Select a valid choice" in html and rows(html) == []


def test_list_empty_state_says_what_to_do(web, org):
    html = get(web, "vulnerability-list")
    assert "No vulnerability data yet" in html and "import_vulns" in html and "sbom" in html
    assert f'href="{reverse("vulnerability-list", args=["acme"])}"' in html  # the org nav links the page


# --- one vulnerability -----------------------------------------------------------------------------------

@pytest.mark.parametrize("alias", ["CVE-2019-10906", "GHSA-462w-v97r-4m45", "pysec-2019-217"])
def test_a_vulnerability_by_any_alias(web, data, alias):
    html = get(web, "vulnerability-detail", alias)
    assert "<h1>CVE-2019-10906" in html and "Jinja2 sandbox escape" in html
    assert "GHSA-462w-v97r-4m45" in section(html, "aliases") and "PYSEC-2019-217" in section(html, "aliases")
    assert "8.6" in section(html, "cvss")


def test_vulnerability_page_running_history_and_timeline(web, data):
    html = get(web, "vulnerability-detail", "CVE-2019-10906")
    running = section(html, "running")
    assert running.count("<tr>") == 3  # header + prod + staging
    assert "pkg:pypi/jinja2@2.10" in running and "/environments/prod/snapshots/1/" in running
    assert "/environments/staging/snapshots/1/" in running
    assert "No past window" in section(html, "history")
    past = get(web, "vulnerability-detail", "CVE-2021-23337")
    history = section(past, "history")
    # old ran in prod from snapshot #1 until snapshot #2: both linked, both times shown
    assert "/environments/prod/snapshots/1/" in history and "/environments/prod/snapshots/2/" in history
    assert "2026-03-02 09:00" in history and "2026-03-02 10:00" in history
    assert "No affected artifact runs now" in section(past, "running")


def test_timeline_has_a_bar_per_window_and_marks_now(web, data):
    html = get(web, "vulnerability-detail", "CVE-2019-10906")
    raw = web.get(reverse("vulnerability-detail", args=["acme", "CVE-2019-10906"])).content.decode()
    assert '<svg class="chart"' in raw  # the chart is markup, not escaped text
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", section(html, "timeline"), re.S).group(0))  # noqa: S314
    bars = [el for el in svg.iter() if el.tag.endswith("rect") and el.get("data-window")]
    assert [b.get("data-window") for b in bars] == ["open", "open"]  # prod · web, staging · web
    assert any(el.get("data-now") for el in svg.iter())
    assert svg.get("role") == "img" and "CVE-2019-10906" in svg.get("aria-label")
    assert "2 windows in 2 environment × artifact lanes" in section(html, "timeline")  # the text alternative
    past = get(web, "vulnerability-detail", "CVE-2021-23337")
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", section(past, "timeline"), re.S).group(0))  # noqa: S314
    assert [el.get("data-window") for el in svg.iter() if el.get("data-window")] == ["closed"]


def test_vulnerability_page_for_one_environment(web, data):
    listed = get(web, "vulnerability-list", environment="staging")
    link = reverse("vulnerability-detail", args=["acme", "CVE-2019-10906"]) + "?environment=staging"
    assert f'href="{link}"' in listed  # the list's environment filter carries over
    html = get(web, "vulnerability-detail", "CVE-2019-10906", environment="staging")
    running = section(html, "running")
    assert ">staging<" in running and ">prod<" not in running
    assert "1 window in 1 environment × artifact lane," in section(html, "timeline")
    assert "Exposure timeline in staging" in html
    assert "coverage-unknown-note" not in html  # worker runs in prod only


def test_vulnerability_page_states_coverage_unknown(web, data):
    html = get(web, "vulnerability-detail", "CVE-2021-44228")
    table = section(html, "coverage-unknown")
    assert ">worker<" in table and "/environments/prod/" in table
    assert "1 running artifact has no SBOM" in section(html, "coverage-unknown-note")


def test_references_go_through_the_safe_link_guard(web, data):
    html = get(web, "vulnerability-detail", "CVE-2019-10906")
    refs = section(html, "references")
    assert '<a href="https://nvd.nist.gov/vuln/detail/CVE-2019-10906" rel="noopener noreferrer">' in refs
    assert 'href="javascript:' not in html and "javascript:alert(1)" in refs  # shown as text


def test_affected_packages_and_fixed_versions(web, data):
    html = get(web, "vulnerability-detail", "CVE-2021-44228")
    affected = section(html, "affected")
    assert "org.apache.logging.log4j:log4j-core" in affected and "Maven" in affected
    assert "fixed 2.10.1" in affected  # as the record's range states it


def test_unknown_vulnerability_is_a_404(web, data):
    get(web, "vulnerability-detail", "CVE-1999-0001", status=404)


def test_suppressed_shown_with_justification_and_attestation(web, data, org):
    statement = vex_statement(org, data.api, "CVE-2021-44228", justification="vulnerable_code_not_present")
    html = get(web, "vulnerability-detail", "CVE-2021-44228")
    suppressed = section(html, "suppressed")
    assert "vulnerable_code_not_present" in suppressed and ">api<" in suppressed
    attestation = Attestation.objects.get(pk=statement.attestation_id)
    assert reverse("attestation-detail", args=["acme", "backend", "build-1", attestation.pk]) in suppressed
    assert "No affected artifact runs now" in section(html, "running")
    listed = get(web, "vulnerability-list")
    assert ">1<" in section(listed, "suppressed-count")
    # listed last, as suppressed: never dropped, never counted as running
    assert rows(listed)[-1] == ("CVE-2021-44228", "suppressed")
    assert "Suppressed by VEX in every affected artifact" in listed
    assert ("CVE-2021-44228", "suppressed") not in rows(get(web, "vulnerability-list", running="1"))
    artifact = get(web, "artifact-detail", data.api)
    assert "suppressed by VEX" in section(artifact, "artifact-vulnerabilities")


# --- sections of the artifact and environment pages ------------------------------------------------------

def test_artifact_page_lists_its_vulnerabilities_worst_first(web, data):
    html = get(web, "artifact-detail", data.web)
    part = section(html, "artifact-vulns")
    assert re.findall(r'data-group="([^"]+)"', part) == ["CVE-2019-10906", "CVE-2020-28493"]
    assert reverse("vulnerability-detail", args=["acme", "CVE-2019-10906"]) in part
    assert "pkg:pypi/jinja2@2.10" in part and "2.11.3" in part


def test_artifact_without_sbom_is_coverage_unknown_never_clean(web, data):
    html = get(web, "artifact-detail", data.worker)
    part = section(html, "artifact-vulnerabilities")
    assert "coverage unknown" in part and "No SBOM" in part and "No known vulnerability" not in part


def test_environment_page_lists_running_vulnerable_artifacts_and_coverage(web, data):
    html = get(web, "environment-detail", "prod")
    part = section(html, "environment-vulnerabilities")
    table = section(part, "environment-vulns")
    assert table.index(">api<") < table.index(">web<")  # critical before high
    assert "1 critical" in table and "1 high" in table and "1 unknown" in table
    assert ">old<" not in table  # exited at #2
    assert "1 of 3 running artifacts have no SBOM" in section(part, "coverage-unknown") or \
        "1 of 3 running artifacts has no SBOM" in section(part, "coverage-unknown")
    staging = section(get(web, "environment-detail", "staging"), "environment-vulnerabilities")
    assert ">web<" in staging and "coverage-unknown" not in staging


def test_logical_environment_page_shows_its_members_vulnerable_artifacts(web, data, org):
    ctx = data.history.ctx
    everything, _ = create_or_update_environment(ctx, org, "everything", "logical")
    for member in ("prod", "staging"):
        join_environment(ctx, org, everything, member)
    part = section(get(web, "environment-detail", "everything"), "environment-vulnerabilities")
    table = section(part, "environment-vulns")
    assert table.count('data-testid="vuln-artifact"') == 3  # api and web in prod, web in staging
    assert ">prod<" in table and ">staging<" in table
    assert "worker" in section(part, "coverage-unknown")


# --- component search ------------------------------------------------------------------------------------

def test_component_search_by_purl_name_and_version(web, data):
    html = get(web, "component-search", q="pkg:pypi/jinja2")
    component = section(html, "component")
    assert 'data-purl="pkg:pypi/jinja2@2.10"' in component and "running now" in component
    runs = section(component, "component-runs")
    assert ">prod<" in runs and ">staging<" in runs and "CVE-2019-10906" in component
    assert 'data-purl="pkg:pypi/jinja2@2.10"' in get(web, "component-search", q="Jinja2@2.10")
    assert 'data-purl="pkg:pypi/jinja2@2.10"' in get(web, "component-search", purl="pkg:pypi/jinja2@2.10")
    assert "component-none" in get(web, "component-search", q="jinja2@3.1.4")
    lodash = section(get(web, "component-search", q="pkg:npm/lodash@4.17.20"), "component")
    assert "ran before" in lodash and "/environments/prod/snapshots/2/" in lodash


def test_component_search_refuses_what_is_not_a_query(web, data):
    html = get(web, "component-search", q="pkg:")
    assert "Give a package URL" in html


# --- tenancy and roles -----------------------------------------------------------------------------------

def test_another_org_sees_nothing_of_this_org(client, data, other_org):
    client.force_login(other_org.memberships.first().user)
    listed = get(client, "vulnerability-list", org="globex")
    assert rows(listed) == [] and "CVE-2019-10906" not in listed
    detail = get(client, "vulnerability-detail", "CVE-2019-10906", org="globex")  # advisories are global
    assert "Jinja2 sandbox escape" in detail
    for part in ("running", "history", "suppressed", "coverage-unknown"):
        assert "prod" not in section(detail, part) and "staging" not in section(detail, part)
    assert "component-none" in get(client, "component-search", org="globex", q="pkg:pypi/jinja2")
    # and this org's pages are a 404 for a member of the other org
    get(client, "vulnerability-list", org="acme", status=404)
    get(client, "vulnerability-detail", "CVE-2019-10906", org="acme", status=404)


def test_readers_see_the_pages_snapshotters_do_not(client, data, org, member_of):
    client.force_login(member_of(org, Role.READER))
    get(client, "vulnerability-list")
    client.force_login(member_of(org, Role.SNAPSHOTTER))
    get(client, "vulnerability-list", status=403)
    get(client, "component-search", status=403)


def test_environment_section_costs_the_same_whatever_the_number_of_vulnerable_artifacts(
        web, data, org, django_assert_max_num_queries):
    url = reverse("environment-detail", args=["acme", "prod"])
    with CaptureQueriesContext(connection) as baseline:
        assert web.get(url).status_code == 200
    extra = advisory("GHSA-h5c8-rqwp-cp95", aliases=["CVE-2024-22195"], group_id="CVE-2024-22195",
                     severity="medium", summary="Jinja vulnerable to HTML attribute injection")
    more = [("web", data.web), ("api", data.api), ("worker", data.worker)]
    for n in range(8):
        packages = sbom(org, fp(0xB0 + n), "pkg:pypi/jinja2@3.1.2")
        match(org, extra, packages["pkg:pypi/jinja2@3.1.2"], fixed=("3.1.3",))
        more.append((f"job-{n}", fp(0xB0 + n)))
    data.history.report("prod", *more)
    with django_assert_max_num_queries(len(baseline)):
        html = unescape(web.get(url).content.decode())
    assert section(html, "environment-vulns").count('data-testid="vuln-artifact"') == 10


def test_the_vulnerability_page_downloads_its_exposure_report(web, data):
    """The page's "Download PDF" queues the ``exposure`` report of the group (and the environment shown)."""
    html = web.get(reverse("vulnerability-detail", args=["acme", "ghsa-462w-v97r-4m45"]),
                   {"environment": "staging"}).content.decode()
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*data-testid="report-button".*?</form>', html, re.S)
    assert form, "no Download PDF button"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(0)))
    assert fields["kind"] == "exposure" and fields["vulnerability"] == "CVE-2019-10906"
    assert fields["environment"] == "staging"
    response = web.post(form.group(1), fields)
    assert response.status_code == 302
    report = AuditReport.objects.get()
    assert (report.kind, report.params["group_id"], report.params["environment"]) == (
        "exposure", "CVE-2019-10906", "staging")
