"""Incremental matching: a new, changed or withdrawn advisory re-matches only the components it names,
in every org, with batched queries; an SBOM attested before its artifact is matched when the artifact
arrives; and, once, the whole path with the real attestation API and a real Celery worker."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.choices import Role
from tests.conftest import wait_for
from tests.evidence.conftest import begin_trail, evidence_root, make_flow, report_artifact  # noqa: F401
from tests.vulns.osv_support import SBOM, attest_sbom, cyclonedx, load, load_all, variant
from vulns import hooks, matching
from vulns.models import Advisory, ComponentPackage, VulnerabilityMatch


@pytest.fixture
def other_reporter(other_org, token_for, api):
    client = api(token=token_for(other_org, Role.MEMBER))
    make_flow(client, org="globex")
    begin_trail(client, org="globex")
    return client


@pytest.fixture
def announced():
    calls = []

    def listener(org_id, match_ids, cause):
        calls.append((org_id, sorted(match_ids), cause))

    hooks.matches_added(listener)
    yield calls
    hooks._matches_added.remove(listener)


def pairs(**filters) -> set[tuple[str, str]]:
    return {(m.package.purl, m.advisory.osv_id)
            for m in VulnerabilityMatch.objects.filter(**filters).select_related("package", "advisory")}


@pytest.mark.django_db
def test_a_new_advisory_matches_only_the_components_it_names_in_every_org(
        org, other_org, reporter, other_reporter, announced, django_capture_on_commit_callbacks):
    load("GHSA-462w-v97r-4m45")
    mine = attest_sbom(reporter, (SBOM / "npm-project.cdx.json").read_bytes())
    theirs = attest_sbom(other_reporter, cyclonedx("pkg:npm/lodash@4.17.15", "pkg:pypi/jinja2@2.10"), org="globex",
                         fingerprint="6" * 64)
    matching.index_sbom(mine.pk)
    matching.index_sbom(theirs.pk)
    before = set(VulnerabilityMatch.objects.values_list("pk", "advisory__osv_id", "package__purl"))
    announced.clear()

    lodash = load("GHSA-35jh-r3h4-6jhm")
    with django_capture_on_commit_callbacks(execute=True):
        result = matching.rematch_advisories([lodash.pk])

    new = VulnerabilityMatch.objects.filter(advisory=lodash)
    assert {(m.org_id, m.package.purl) for m in new.select_related("package")} == {
        (org.pk, "pkg:npm/lodash@4.17.20"), (other_org.pk, "pkg:npm/lodash@4.17.15")}
    assert result == {o: list(new.filter(org_id=o).values_list("pk", flat=True)) for o in (org.pk, other_org.pk)}
    assert sorted(announced) == sorted((o, ids, "advisory") for o, ids in result.items())
    # the matches of other advisories are untouched (same rows)
    assert before <= set(VulnerabilityMatch.objects.values_list("pk", "advisory__osv_id", "package__purl"))
    # a re-run (the same import delivered twice) adds and announces nothing
    announced.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert matching.rematch_advisories([lodash.pk]) == {}
    assert announced == []


@pytest.mark.django_db
def test_rematching_reads_in_batches_whatever_the_number_of_components(reporter):
    advisory = load("GHSA-35jh-r3h4-6jhm")
    few = attest_sbom(reporter, cyclonedx(*[f"pkg:npm/lodash@4.17.{n}" for n in range(3)]), name="few")
    matching.index_sbom(few.pk)
    VulnerabilityMatch.objects.all().delete()
    with CaptureQueriesContext(connection) as small:
        matching.rematch_advisories([advisory.pk])

    many = attest_sbom(reporter, cyclonedx(*[f"pkg:npm/lodash@4.{m}.{n}" for m in range(10) for n in range(30)]),
                       name="many")
    matching.index_sbom(many.pk)
    VulnerabilityMatch.objects.all().delete()
    with CaptureQueriesContext(connection) as large:
        result = matching.rematch_advisories([advisory.pk])
    assert sum(len(ids) for ids in result.values()) == 303
    assert len(large.captured_queries) == len(small.captured_queries)


@pytest.mark.django_db
def test_a_whole_import_rematched_in_small_batches_and_chunks_finds_what_indexing_finds(reporter, monkeypatch):
    sbom = (SBOM / "python-venv.cdx.json").read_bytes()
    advisories = load_all()
    indexed = attest_sbom(reporter, sbom, name="indexed")
    matching.index_sbom(indexed.pk)
    expected = {(purl.split("@")[1], osv) for purl, osv in pairs()}
    VulnerabilityMatch.objects.all().delete()

    monkeypatch.setattr(matching, "ADVISORY_BATCH", 3)
    monkeypatch.setattr(matching, "CHUNK", 2)
    result = matching.rematch_advisories([a.pk for a in advisories.values()])
    assert {(purl.split("@")[1], osv) for purl, osv in pairs()} == expected
    assert sorted(sum(result.values(), [])) == sorted(VulnerabilityMatch.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_changed_advisory_removes_the_matches_that_no_longer_hold_and_updates_fixed(reporter, org):
    advisory = load("GHSA-jfh8-c2jp-5v3q")
    attestation = attest_sbom(reporter, cyclonedx("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                                                  "pkg:maven/org.apache.logging.log4j/log4j-core@2.12.1"))
    matching.index_sbom(attestation.pk)
    kept = VulnerabilityMatch.objects.get(package__version="2.12.1")

    def narrowed(record):  # the 2.13 stream dropped; the 2.4 stream now fixed in 2.12.4
        record["affected"] = record["affected"][1:]
        record["affected"][1]["ranges"][0]["events"][1] = {"fixed": "2.12.4"}
        record["modified"] = "2023-01-01T00:00:00Z"
    load(variant("GHSA-jfh8-c2jp-5v3q", narrowed))
    assert matching.rematch_advisories([advisory.pk]) == {}

    remaining = VulnerabilityMatch.objects.for_org(org).get()
    assert remaining.pk == kept.pk and remaining.fixed == ["2.12.4"]


@pytest.mark.django_db
def test_matches_follow_their_advisory_into_its_new_alias_group(reporter):
    advisory = load(variant("GHSA-5crp-9r3c-p9vr", lambda r: r.__setitem__("aliases", [])))
    attestation = attest_sbom(reporter, cyclonedx("pkg:nuget/Newtonsoft.Json@12.0.3"))
    matching.index_sbom(attestation.pk)
    assert VulnerabilityMatch.objects.get().group_id == "GHSA-5crp-9r3c-p9vr"
    load(variant("GHSA-5crp-9r3c-p9vr", lambda r: r.__setitem__("aliases", ["CVE-2024-21907"])))
    matching.rematch_advisories([advisory.pk])
    assert VulnerabilityMatch.objects.get().group_id == "CVE-2024-21907"


@pytest.mark.django_db
def test_an_advisory_that_renames_its_package_leaves_the_old_components(reporter):
    advisory = load("GHSA-35jh-r3h4-6jhm")
    attestation = attest_sbom(reporter, cyclonedx("pkg:npm/lodash@4.17.20", "pkg:npm/lodash-es@4.17.20"))
    matching.index_sbom(attestation.pk)
    load(variant("GHSA-35jh-r3h4-6jhm", lambda r: r.__setitem__("affected", r["affected"][1:])))
    matching.rematch_advisories([advisory.pk])
    assert pairs() == {("pkg:npm/lodash-es@4.17.20", "GHSA-35jh-r3h4-6jhm")}


@pytest.mark.django_db
def test_a_withdrawn_advisory_loses_its_matches(reporter, other_reporter):
    advisory = load("GHSA-462w-v97r-4m45")
    load("PYSEC-2019-217")
    for client, org, fingerprint in ((reporter, "acme", "5" * 64), (other_reporter, "globex", "6" * 64)):
        matching.index_sbom(attest_sbom(client, cyclonedx("pkg:pypi/jinja2@2.10"), org=org, fingerprint=fingerprint).pk)
    assert VulnerabilityMatch.objects.filter(advisory=advisory).count() == 2

    load(variant("GHSA-462w-v97r-4m45", lambda r: r.__setitem__("withdrawn", "2024-02-01T00:00:00Z")))
    assert matching.rematch_advisories([advisory.pk]) == {}
    assert not VulnerabilityMatch.objects.filter(advisory=advisory).exists()
    assert {osv for _, osv in pairs()} == {"PYSEC-2019-217"}  # its alias in the other database stays


@pytest.mark.django_db
def test_the_importer_hook_runs_rematching(reporter):
    """h1's importer calls ``hooks.run_advisories_changed``; the matcher is registered there."""
    attestation = attest_sbom(reporter, cyclonedx("pkg:pypi/requests@2.19.1"))
    matching.index_sbom(attestation.pk)
    advisory = load("GHSA-x84v-xcm2-53pg")
    hooks.run_advisories_changed([advisory.pk])
    assert pairs() == {("pkg:pypi/requests@2.19.1", "GHSA-x84v-xcm2-53pg")}


@pytest.mark.integration
def test_an_sbom_is_matched_on_arrival_by_the_worker_and_a_waiting_one_when_its_artifact_arrives(
        celery_worker, org, reporter, announced):
    load("GHSA-35jh-r3h4-6jhm")
    load("GHSA-xvch-5gv4-984h")
    attestation = attest_sbom(reporter, (SBOM / "npm-project.cdx.json").read_bytes())
    wait_for(lambda: VulnerabilityMatch.objects.filter(package__attestation=attestation).count() == 2,
             "the worker to match the SBOM")
    assert pairs() == {("pkg:npm/lodash@4.17.20", "GHSA-35jh-r3h4-6jhm"),
                       ("pkg:npm/minimist@1.2.0", "GHSA-xvch-5gv4-984h")}
    wait_for(lambda: announced, "the matches to be announced")
    assert announced == [(org.pk, sorted(VulnerabilityMatch.objects.values_list("pk", flat=True)), "sbom")]

    # attested by template name and commit before the artifact exists: nothing to index it under yet
    commit = "c" * 40
    begin_trail(reporter, name="build-2", commit=commit)
    waiting = attest_sbom(reporter, cyclonedx("pkg:npm/lodash@4.17.11"), name="sbom-2", trail="build-2",
                          fingerprint=None, data={"target_artifacts": ["backend-image"],
                                                  "git_commit_info": {"sha1": commit, "message": "m", "author": "a",
                                                                      "timestamp": 1, "branch": "main"}})
    fingerprint = "7" * 64
    response = report_artifact(reporter, fingerprint, trail="build-2", commit=commit)
    assert response.status_code in (200, 201), response.content
    match = wait_for(lambda: VulnerabilityMatch.objects.filter(package__attestation=waiting).first(),
                     "the bound SBOM to be matched")
    assert (match.artifact_fingerprint, match.advisory.osv_id) == (fingerprint, "GHSA-35jh-r3h4-6jhm")
    assert set(ComponentPackage.objects.filter(attestation=waiting).values_list("artifact_fingerprint", flat=True)) == {
        fingerprint}
    assert Advisory.objects.count() == 2
