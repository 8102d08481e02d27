"""The vulnerability API: /api/v2/vulnerabilities/{org}[/{id}] and /api/v2/components/{org}, against a
snapshot history built with the real snapshot services."""

from datetime import timedelta

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from journal.models import JournalHead
from snapshots.models import Snapshot
from tenants.choices import Role
from tests.vulns.exposure_support import (
    DB,
    FIXED,
    LEGACY,
    T0,
    WEB,
    History,
    advisory,
    build_cve,
    fp,
    match,
    sbom,
    vex_statement,
)
from vulns.models import ComponentPackage

pytestmark = pytest.mark.django_db


@pytest.fixture
def cve(org, history):
    return build_cve(org)


@pytest.fixture
def reader(org, token_for, api):
    return api(token=token_for(org, Role.READER))


@pytest.fixture
def more(org, cve):
    """Three more groups on web's flask: critical, low and unknown; and a medium one on an artifact that
    never ran."""
    flask = ComponentPackage.objects.get(org=org, artifact_fingerprint=WEB, purl="pkg:pypi/flask@1.0")
    for osv_id, severity, score in (("GHSA-crit-crit-crit", "critical", 9.8), ("GHSA-loww-loww-loww", "low", 2.1),
                                    ("PYSEC-2099-1", "unknown", None)):
        match(org, advisory(osv_id, severity=severity, cvss_score=score, affected=(("PyPI", "flask"),)), flask)
    never = sbom(org, fp(88), "pkg:pypi/requests@2.0")["pkg:pypi/requests@2.0"]
    match(org, advisory("GHSA-medi-medi-medi", severity="medium", cvss_score=5.0, affected=(("PyPI", "requests"),)),
          never)


def test_a_vulnerability_by_any_alias(reader, cve, history):
    for spelling in ("CVE-2019-10906", "cve-2019-10906", "GHSA-462w-v97r-4m45", "pysec-2019-217"):
        response = reader.get(f"/api/v2/vulnerabilities/acme/{spelling}")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["id"] == spelling and body["group_id"] == cve
    assert body["aliases"] == ["CVE-2019-10906", "GHSA-462w-v97r-4m45", "PYSEC-2019-217"]
    assert body["osv_ids"] == ["GHSA-462w-v97r-4m45", "PYSEC-2019-217"]
    assert body["severity"] == "high" and body["cvss_score"] == 8.6
    assert body["summary"] == "Jinja2 sandbox escape via string formatting"
    assert body["details"].startswith("In Pallets Jinja before 2.10.1")
    assert [r["url"] for r in body["references"]] == ["https://nvd.nist.gov/vuln/detail/CVE-2019-10906",
                                                      "https://github.com/pallets/jinja/commit/a2a6c93"]
    assert {(a["osv_id"], a["ecosystem"], a["name"]) for a in body["affected"]} == {
        ("GHSA-462w-v97r-4m45", "PyPI", "jinja2"), ("PYSEC-2019-217", "PyPI", "jinja2")}
    assert body["published"].startswith("2020-") and body["withdrawn"] is None

    prod = history.envs["prod"]
    [running] = body["running"]
    restart = Snapshot.objects.get(environment=prod, index=4)
    assert (running["environment"], running["artifact_name"], running["fingerprint"]) == ("prod", "web", WEB)
    assert running["components"] == ["pkg:pypi/jinja2@2.10"]
    assert running["from_index"] == 4 and running["to_index"] is None and running["to"] is None
    assert running["since"] == running["from"] == restart.created_at.isoformat().replace("+00:00", "Z")
    assert running["from_journal_index"] == restart.leaf.index
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in body["history"]] == [
        ("prod", 1, 3), ("staging", 1, 2)]
    assert [(c["environment"], c["artifact_name"], c["reason"]) for c in body["coverage_unknown"]] == [
        ("staging", "legacy", "no_sbom")]
    assert body["suppressed"] == []
    assert body["journal_index"] == JournalHead.objects.get(org=history.org).last_index > 0


def test_one_environment(reader, cve):
    body = reader.get(f"/api/v2/vulnerabilities/acme/{cve}?environment=staging").json()
    assert body["environment"] == "staging" and body["running"] == []
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in body["history"]] == [("staging", 1, 2)]
    response = reader.get(f"/api/v2/vulnerabilities/acme/{cve}?environment=nowhere")
    assert response.status_code == 400
    assert "nowhere" in response.json()["error"]["fields"]["environment"][0]


def test_a_withdrawn_vulnerability_says_so_and_exposes_nothing(reader, org, history):
    gone = advisory("GHSA-gone-gone-gone", withdrawn=T0 - timedelta(days=1), summary="withdrawn: not a flaw")
    match(org, gone, sbom(org, fp(61), "pkg:pypi/jinja2@2.9")["pkg:pypi/jinja2@2.9"])
    history.report("prod", ("web", WEB), ("db", DB), ("old", fp(61)))
    body = reader.get("/api/v2/vulnerabilities/acme/GHSA-gone-gone-gone").json()
    assert body["withdrawn"] == "2026-03-01T09:00:00Z" and body["running"] == []
    assert reader.get("/api/v2/vulnerabilities/acme").json()["count"] == 0


def test_an_unknown_id_is_a_404_naming_it(reader, cve):
    response = reader.get("/api/v2/vulnerabilities/acme/CVE-2099-99999")
    assert response.status_code == 404
    assert "CVE-2099-99999" in response.json()["error"]["message"]


def test_another_orgs_exposure_is_invisible(cve, other_org, api, token_for, django_capture_on_commit_callbacks):
    """globex sees the global advisory but none of acme's windows; acme's org is a 404 to it."""
    theirs = api(token=token_for(other_org, Role.READER))
    assert theirs.get(f"/api/v2/vulnerabilities/acme/{cve}").status_code == 404
    assert theirs.get("/api/v2/vulnerabilities/acme").status_code == 404
    assert theirs.get("/api/v2/components/acme?purl=pkg:pypi/jinja2").status_code == 404
    History(other_org, django_capture_on_commit_callbacks).report("prod", ("web", WEB))
    body = theirs.get(f"/api/v2/vulnerabilities/globex/{cve}").json()
    assert body["running"] == body["history"] == [] and body["matched_fingerprints"] == []
    # globex runs acme's image but has no SBOM of its own for it: coverage unknown, not clean.
    assert [c["fingerprint"] for c in body["coverage_unknown"]] == [WEB]
    assert theirs.get("/api/v2/vulnerabilities/globex").json()["count"] == 0
    assert theirs.get("/api/v2/components/globex?purl=pkg:pypi/jinja2").json()["count"] == 0


@pytest.mark.parametrize("role, status", [(Role.READER, 200), (Role.MEMBER, 200), (Role.SNAPSHOTTER, 403)])
def test_read_permission(org, cve, api, token_for, role, status):
    client = api(token=token_for(org, role))
    for path in (f"/api/v2/vulnerabilities/acme/{cve}", "/api/v2/vulnerabilities/acme",
                 "/api/v2/components/acme?purl=pkg:pypi/jinja2"):
        assert client.get(path).status_code == status, path
    assert api().get("/api/v2/vulnerabilities/acme").status_code == 401


def test_the_list_running_first_then_worst_first(reader, more):
    body = reader.get("/api/v2/vulnerabilities/acme").json()
    assert body["count"] == 5 and body["environment"] is None and body["journal_index"] > 0
    # Running now: critical, high (the CVE), low, unknown (last, never counted as low); then what does
    # not run now (the medium one on an artifact that never ran).
    assert [(v["group_id"], v["running_artifacts"]) for v in body["results"]] == [
        ("GHSA-crit-crit-crit", 1), ("CVE-2019-10906", 1), ("GHSA-loww-loww-loww", 1), ("PYSEC-2099-1", 1),
        ("GHSA-medi-medi-medi", 0)]
    first = body["results"][1]
    assert first["running_environments"] == ["prod"] and first["affected_artifacts"] == 1 and first["ever_ran"]
    assert body["results"][4]["ever_ran"] is False


def test_list_filters(reader, more):
    def ids(query):
        response = reader.get(f"/api/v2/vulnerabilities/acme?{query}")
        assert response.status_code == 200, response.content
        return [v["group_id"] for v in response.json()["results"]]

    assert ids("severity=high") == ["CVE-2019-10906"]
    assert ids("severity=critical,unknown") == ["GHSA-crit-crit-crit", "PYSEC-2099-1"]
    assert ids("running=true") == ["GHSA-crit-crit-crit", "CVE-2019-10906", "GHSA-loww-loww-loww", "PYSEC-2099-1"]
    assert ids("running=false") == ["GHSA-medi-medi-medi"]
    # staging ran web (until the upgrade) but runs nothing affected now.
    assert ids("environment=staging&running=true") == []
    assert len(ids("environment=staging")) == 4
    assert ids("environment=prod&running=true&severity=low") == ["GHSA-loww-loww-loww"]


@pytest.mark.parametrize("query, field", [("severity=urgent", "severity"), ("severity=high,meh", "severity"),
                                          ("running=maybe", "running"), ("environment=nowhere", "environment"),
                                          ("page=x", "page")])
def test_bad_filters_are_400_naming_the_field(reader, more, query, field):
    response = reader.get(f"/api/v2/vulnerabilities/acme?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_list_paging(reader, more):
    page = reader.get("/api/v2/vulnerabilities/acme?per_page=2&page=2").json()
    assert page["count"] == 5 and [v["group_id"] for v in page["results"]] == ["GHSA-loww-loww-loww", "PYSEC-2099-1"]
    assert "page=3" in page["next"] and page["previous"] is not None
    assert reader.get("/api/v2/vulnerabilities/acme?per_page=2&page=4").status_code == 404


def test_component_search(reader, cve, history):
    body = reader.get("/api/v2/components/acme?purl=pkg:pypi/jinja2").json()
    assert body["package_key"] == "pypi/jinja2" and body["version"] == "" and body["never_ran"] == 0
    # web (jinja2 2.10) runs in prod and ran in prod and staging; the fixed build (2.10.1) runs in staging.
    by_fp = {a["fingerprint"]: a for a in body["results"]}
    assert set(by_fp) == {WEB, FIXED}
    web, fixed = by_fp[WEB], by_fp[FIXED]
    assert web["components"] == ["pkg:pypi/jinja2@2.10"] and fixed["components"] == ["pkg:pypi/jinja2@2.10.1"]
    assert [(w["environment"], w["from_index"]) for w in web["running"]] == [("prod", 4)]
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in web["history"]] == [
        ("prod", 1, 3), ("staging", 1, 2)]
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in fixed["running"]] == [("staging", 2, None)]
    assert [v["group_id"] for v in web["vulnerabilities"]] == [cve] and fixed["vulnerabilities"] == []
    assert web["vulnerabilities"][0]["fixed"] == ["2.10.1"]
    assert [c["fingerprint"] for c in body["coverage_unknown"]] == [LEGACY]
    assert body["journal_index"] > 0

    one_version = reader.get("/api/v2/components/acme?purl=pkg:pypi/Jinja2@2.10").json()
    assert [a["fingerprint"] for a in one_version["results"]] == [WEB] and one_version["version"] == "2.10"
    staging = reader.get("/api/v2/components/acme?purl=pkg:pypi/jinja2&environment=staging").json()
    assert {a["fingerprint"]: len(a["running"]) for a in staging["results"]} == {WEB: 0, FIXED: 1}
    db = reader.get("/api/v2/components/acme?purl=pkg:deb/debian/postgresql-15").json()
    assert [a["fingerprint"] for a in db["results"]] == [DB]


@pytest.mark.parametrize("query", ["purl=jinja2", "purl=pkg:", "", "purl=pkg:pypi/jinja2&environment=nowhere"])
def test_component_search_refuses_bad_input(reader, cve, query):
    response = reader.get(f"/api/v2/components/acme?{query}")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) & {"purl", "environment"}


def test_a_fixed_number_of_queries_per_answer(reader, org, cve, django_capture_on_commit_callbacks,
                                              django_assert_max_num_queries):
    """Twenty more windows in three more environments cost no more queries than none."""
    h = History(org, django_capture_on_commit_callbacks)
    for cycle in range(8):
        for name in ("a", "b", "c"):
            h.report(name, ("web", WEB) if cycle % 2 == 0 else ("db", DB))
    for path in (f"/api/v2/vulnerabilities/acme/{cve}", "/api/v2/vulnerabilities/acme",
                 "/api/v2/components/acme?purl=pkg:pypi/jinja2"):
        with django_assert_max_num_queries(20) as captured:
            assert reader.get(path).status_code == 200
        small = len(captured.captured_queries)
        for name in ("d", "e", "f"):
            h.report(name, ("web", WEB))
            h.report(name, ("db", DB))
        with django_assert_max_num_queries(small):
            assert reader.get(path).status_code == 200


def test_the_schema_generates_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    messages = list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert not [m for m in messages if "vulns" in m or "Vulnerabilit" in m or "Component" in m]
    window = schema["components"]["schemas"]["Window"]["properties"]
    assert {"from", "to", "from_index", "to_index", "from_journal_index", "to_journal_index"} <= set(window)


def test_the_schema_documents_the_endpoints(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v2/vulnerabilities/{org}", "/api/v2/vulnerabilities/{org}/{vulnerability}",
            "/api/v2/components/{org}"} <= set(paths)
    parameters = {p["name"] for p in paths["/api/v2/vulnerabilities/{org}"]["get"]["parameters"]}
    assert {"environment", "severity", "running", "page", "per_page"} <= parameters
    assert "400" in paths["/api/v2/components/{org}"]["get"]["responses"]


def test_vex_suppression_is_shown_not_dropped(org, reader, cve):
    """web is declared not affected; the detail moves its
    windows to ``suppressed`` with the justification, and the list no longer counts it as running."""
    vex_statement(org, WEB, "CVE-2019-10906", justification="inline_mitigations_already_exist")
    body = reader.get(f"/api/v2/vulnerabilities/acme/{cve}").json()
    assert body["running"] == body["history"] == []
    assert [(w["environment"], w["from_index"], w["running"]) for w in body["suppressed"]] == [
        ("prod", 1, False), ("prod", 4, True), ("staging", 1, False)]
    assert body["suppressed"][0]["suppression"]["justification"] == "inline_mitigations_already_exist"
    [item] = reader.get("/api/v2/vulnerabilities/acme").json()["results"]
    assert (item["running_artifacts"], item["suppressed_artifacts"]) == (0, 1)
    assert reader.get("/api/v2/vulnerabilities/acme?running=true").json()["count"] == 0
    component = reader.get("/api/v2/components/acme?purl=pkg:pypi/jinja2@2.10").json()["results"][0]
    assert component["vulnerabilities"][0]["suppressed"]["status"] == "not_affected"
