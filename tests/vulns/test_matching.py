"""Matching an SBOM's components against real OSV advisories with each ecosystem's own version order:
SBOMs made by cyclonedx-py and npm, sent through the attestation API; true positives per ecosystem,
fixed versions not matched, several streams, last_affected, limit, explicit versions, distribution
releases, versions univers cannot read, GIT ranges, idempotence."""

import logging

import pytest

from evidence.models import SbomComponent
from tenants.choices import Role
from tests.evidence.conftest import begin_trail, evidence_root, make_flow  # noqa: F401 - evidence_root: autouse
from tests.vulns.osv_support import SBOM, attest_sbom, cyclonedx, load, load_all, osv_record, variant
from vulns import hooks, matching
from vulns.models import ComponentPackage, VulnerabilityMatch

pytestmark = pytest.mark.django_db


def matched(org) -> set[tuple[str, str, tuple]]:
    """(component purl, advisory id, fixed versions) of every match of the org."""
    return {(m.package.purl, m.advisory.osv_id, tuple(m.fixed))
            for m in VulnerabilityMatch.objects.for_org(org).select_related("package", "advisory")}


def test_python_sbom_made_by_cyclonedx_py_matches_its_real_advisories(org, reporter):
    load_all()
    attestation = attest_sbom(reporter, (SBOM / "python-venv.cdx.json").read_bytes())
    new = matching.index_sbom(attestation.pk)

    assert matched(org) == {
        ("pkg:pypi/jinja2@2.10", "GHSA-462w-v97r-4m45", ("2.10.1",)),
        ("pkg:pypi/jinja2@2.10", "PYSEC-2019-217", ("2.10.1",)),
        ("pkg:pypi/requests@2.19.1", "GHSA-x84v-xcm2-53pg", ("2.20.0",)),
        ("pkg:pypi/urllib3@1.23", "GHSA-mh33-7rrq-662w", ("1.24.2",)),  # 1.23 is the fix of GHSA-www2-v7xj-xrc6
        ("pkg:pypi/pip@23.2.1", "GHSA-mq26-g339-26xf", ("23.3",)),
        ("pkg:pypi/setuptools@65.5.0", "GHSA-r9hx-vwmv-q579", ("65.5.1",)),
    }
    assert sorted(new) == sorted(VulnerabilityMatch.objects.for_org(org).values_list("pk", flat=True))
    match = VulnerabilityMatch.objects.for_org(org).get(advisory__osv_id="GHSA-462w-v97r-4m45")
    assert match.artifact_fingerprint == attestation.artifact_fingerprint
    assert match.group_id == "CVE-2019-10906"
    package = match.package
    assert (package.package_key, package.version, package.purl_type) == ("pypi/jinja2", "2.10", "pypi")
    assert package.component.attestation_id == attestation.pk
    # every component with a purl is indexed, vulnerable or not
    assert ComponentPackage.objects.for_org(org).count() == SbomComponent.objects.for_org(org).exclude(purl="").count()


def test_npm_sbom_matches_lodash_and_minimist_but_not_the_advisory_its_version_fixes(org, reporter):
    load_all()
    attestation = attest_sbom(reporter, (SBOM / "npm-project.cdx.json").read_bytes())
    matching.index_sbom(attestation.pk)

    assert matched(org) == {
        ("pkg:npm/lodash@4.17.20", "GHSA-35jh-r3h4-6jhm", ("4.17.21",)),
        # two affected entries (< 0.2.4 and 1.0.0 – 1.2.6): one match, the fix of the 1.x stream
        ("pkg:npm/minimist@1.2.0", "GHSA-xvch-5gv4-984h", ("1.2.6",)),
    }  # GHSA-p6mc-m468-83gw is fixed in 4.17.20


ECOSYSTEM_CASES = [
    # (purl, advisory id or None, fixed versions)
    ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", "GHSA-jfh8-c2jp-5v3q", ("2.15.0",)),
    ("pkg:maven/org.apache.logging.log4j/log4j-core@2.12.1", "GHSA-jfh8-c2jp-5v3q", ("2.12.2",)),
    ("pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta9", "GHSA-jfh8-c2jp-5v3q", ("2.3.1",)),
    ("pkg:maven/org.apache.logging.log4j/log4j-core@2.12.2", None, ()),
    ("pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0", None, ()),
    ("pkg:golang/golang.org/x/net@v0.6.0", "GHSA-vvpx-j8f3-3w6h", ("0.7.0",)),
    ("pkg:golang/golang.org/x/net@v0.0.0-20220722155237-a158d28d115b", "GHSA-vvpx-j8f3-3w6h", ("0.7.0",)),
    ("pkg:golang/golang.org/x/net@v0.7.0", None, ()),
    ("pkg:nuget/Newtonsoft.Json@12.0.3", "GHSA-5crp-9r3c-p9vr", ("13.0.1",)),
    ("pkg:nuget/Newtonsoft.Json@13.0.1", None, ()),
    ("pkg:gem/rack@2.1.4", "GHSA-wq4h-7r42-5hrr", ("2.1.4.1",)),
    ("pkg:gem/rack@2.0.9", "GHSA-wq4h-7r42-5hrr", ("2.0.9.1",)),
    ("pkg:gem/rack@2.2.3.1", None, ()),
    ("pkg:cargo/smallvec@1.6.0", "RUSTSEC-2021-0003", ("1.6.1",)),
    ("pkg:cargo/smallvec@0.6.13", "RUSTSEC-2021-0003", ("0.6.14",)),
    ("pkg:cargo/smallvec@0.6.2", None, ()),  # before the first "introduced"
    ("pkg:cargo/smallvec@0.6.14", None, ()),  # between the two streams
    ("pkg:cargo/smallvec@1.6.1", None, ()),
    ("pkg:deb/debian/nginx@1.2.1-2.2%2Bwheezy2?arch=amd64&distro=debian-7", "DSA-3029-1", ("1.2.1-2.2+wheezy3",)),
    ("pkg:deb/debian/nginx@1.2.1-2.2%2Bwheezy3?arch=amd64&distro=debian-7", None, ()),
    ("pkg:deb/debian/nginx@1.2.1-2.2%2Bwheezy2?arch=amd64&distro=debian-12", None, ()),  # another release
    ("pkg:apk/alpine/openssl@3.1.3-r0?arch=x86_64&distro=3.18.4", "ALPINE-CVE-2023-5363", ("3.1.4-r0",)),
    ("pkg:apk/alpine/openssl@3.1.4-r0?arch=x86_64&distro=3.18.4", None, ()),
    ("pkg:apk/alpine/openssl@3.1.3-r0?arch=x86_64&distro=3.19.0", None, ()),  # another release
    # binary packages as syft names them, matched as their source package (the advisories name sources)
    ("pkg:deb/debian/nginx-full@1.2.1-2.2%2Bwheezy2?arch=amd64&upstream=nginx&distro=debian-7", "DSA-3029-1",
     ("1.2.1-2.2+wheezy3",)),
    ("pkg:deb/debian/nginx-common@1.2.1-2.2%2Bwheezy2%2Bb1?arch=all&upstream=nginx%401.2.1-2.2%2Bwheezy2"
     "&distro=debian-7", "DSA-3029-1", ("1.2.1-2.2+wheezy3",)),
    ("pkg:deb/debian/nginx-common@1.2.1-2.2%2Bwheezy3%2Bb1?arch=all&upstream=nginx%401.2.1-2.2%2Bwheezy3"
     "&distro=debian-7", None, ()),  # a binNMU of the fixed source: the source version decides
    ("pkg:apk/alpine/libcrypto3@3.1.3-r0?arch=x86_64&upstream=openssl&distro=3.18.4", "ALPINE-CVE-2023-5363",
     ("3.1.4-r0",)),
]


def test_each_ecosystem_is_compared_in_its_own_version_order(org, reporter):
    load_all()
    attestation = attest_sbom(reporter, cyclonedx(*[purl for purl, _, _ in ECOSYSTEM_CASES]))
    matching.index_sbom(attestation.pk)

    expected = {(ComponentPackage.objects.get(component__purl=purl).purl, osv_id, fixed)
                for purl, osv_id, fixed in ECOSYSTEM_CASES if osv_id}
    assert matched(org) == expected
    # a Debian component without a release in its purl cannot be ruled out: matched against every release
    other = attest_sbom(reporter, cyclonedx("pkg:deb/debian/nginx@1.2.1-2.2%2Bwheezy2?arch=amd64"), name="sbom-2")
    matching.index_sbom(other.pk)
    assert VulnerabilityMatch.objects.for_org(org).filter(package__attestation=other,
                                                          advisory__osv_id="DSA-3029-1").exists()


def test_debian_epoch_from_the_purl_qualifier_is_compared(org, reporter):
    load(variant("DSA-3029-1", lambda r: r["affected"][0]["ranges"][0]["events"].__setitem__(
        1, {"fixed": "1:1.2.1-2.2+wheezy3"})))
    attestation = attest_sbom(reporter, cyclonedx(
        "pkg:deb/debian/nginx@1.2.1-2.2%2Bwheezy9?distro=debian-7",  # epoch 0 < 1: affected
        "pkg:deb/debian/nginx@1.2.1-2.2%2Bwheezy3?distro=debian-7&epoch=1"))  # = the fix
    matching.index_sbom(attestation.pk)
    assert {purl for purl, _, _ in matched(org)} == {"pkg:deb/debian/nginx@1.2.1-2.2%2Bwheezy9?distro=debian-7"}


def _last_affected(record):
    record["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"last_affected": "2.19.1"}]


def _limit(record):
    record["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"limit": "2.19.0"}]


def _limit_star(record):
    record["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"limit": "*"}]


def _versions_only(record):
    del record["affected"][0]["ranges"]


@pytest.mark.parametrize("record, affected, unaffected", [
    # last_affected includes the version it names, and nothing after it
    (variant("GHSA-x84v-xcm2-53pg", _last_affected), ["2.19.1", "2.0.0"], ["2.19.2", "2.20.0"]),
    # limit: at or above it nothing is affected, even inside an open range
    (variant("GHSA-x84v-xcm2-53pg", _limit), ["2.18.4"], ["2.19.0", "2.19.1"]),
    # limit "*": no limit
    (variant("GHSA-x84v-xcm2-53pg", _limit_star), ["2.18.4", "2.31.0"], []),
    # explicit versions alone, compared as versions ("2.10" is "2.10.0")
    (variant("PYSEC-2019-217", _versions_only), ["2.10", "2.10.0", "2.0rc1"], ["2.10.1", "2.11"]),
], ids=["last_affected", "limit", "limit-star", "explicit-versions"])
def test_range_events_and_explicit_versions(org, reporter, record, affected, unaffected):
    load(record)
    purls = [f"pkg:pypi/{record['affected'][0]['package']['name'].lower()}@{v}" for v in affected + unaffected]
    attestation = attest_sbom(reporter, cyclonedx(*purls))
    matching.index_sbom(attestation.pk)
    versions = {m.package.version for m in VulnerabilityMatch.objects.for_org(org).select_related("package")}
    assert versions == set(affected)
    if "last_affected" in str(record):
        assert {tuple(m.fixed) for m in VulnerabilityMatch.objects.for_org(org)} == {()}  # no fix known


def test_semver_ranges_compare_prereleases_as_semver(org, reporter):
    load(variant("GHSA-xvch-5gv4-984h", lambda r: [rng.__setitem__("type", "SEMVER")
                                                    for entry in r["affected"] for rng in entry["ranges"]]))
    attestation = attest_sbom(reporter, cyclonedx("pkg:npm/minimist@1.2.6-beta.1", "pkg:npm/minimist@1.2.6",
                                                  "pkg:npm/minimist@0.2.3", "pkg:npm/minimist@0.2.4"))
    matching.index_sbom(attestation.pk)
    assert {(purl, fixed) for purl, _, fixed in matched(org)} == {
        ("pkg:npm/minimist@1.2.6-beta.1", ("1.2.6",)), ("pkg:npm/minimist@0.2.3", ("0.2.4",))}


def test_a_version_univers_cannot_read_is_counted_and_logged_not_matched_and_the_batch_goes_on(
        org, reporter, caplog):
    load_all()
    load(variant("GHSA-x84v-xcm2-53pg", lambda r: r["affected"][0]["ranges"][0]["events"].__setitem__(
        1, {"fixed": "2.20.0 (see notes)"})))
    attestation = attest_sbom(reporter, cyclonedx("pkg:pypi/jinja2@not.a.version!", "pkg:pypi/requests@2.19.1",
                                                  "pkg:pypi/urllib3@1.23"))
    with caplog.at_level(logging.WARNING, logger="vulns.matching"):
        matching.index_sbom(attestation.pk)
    assert {(purl, osv_id) for purl, osv_id, _ in matched(org)} == {("pkg:pypi/urllib3@1.23", "GHSA-mh33-7rrq-662w")}
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "could not parse" in warning and "not.a.version!" in warning and "2.20.0 (see notes)" in warning
    stats = matching.MatchStats()
    matching.affects("pypi", "not.a.version!", osv_record("GHSA-462w-v97r-4m45")["affected"][0]["ranges"], [], stats)
    assert stats.unparsed == 1


def test_git_ranges_are_skipped_not_guessed(org, reporter):
    def git(record):
        record["affected"][0]["ranges"] = [{"type": "GIT", "repo": "https://github.com/pallets/jinja",
                                            "events": [{"introduced": "0"}, {"fixed": "a2a2c2b8b1"}]}]
    load(variant("GHSA-462w-v97r-4m45", git))
    attestation = attest_sbom(reporter, cyclonedx("pkg:pypi/jinja2@2.10"))
    matching.index_sbom(attestation.pk)
    assert not matched(org)
    stats = matching.MatchStats()
    matching.affects("pypi", "2.10", variant("GHSA-462w-v97r-4m45", git)["affected"][0]["ranges"], [], stats)
    assert stats.git_ranges == 1


def test_indexing_twice_adds_nothing(org, reporter):
    load_all()
    attestation = attest_sbom(reporter, (SBOM / "python-venv.cdx.json").read_bytes())
    first = matching.index_sbom(attestation.pk)
    counts = (ComponentPackage.objects.count(), VulnerabilityMatch.objects.count())
    assert first and matching.index_sbom(attestation.pk) == []
    assert (ComponentPackage.objects.count(), VulnerabilityMatch.objects.count()) == counts


def test_components_without_a_known_purl_are_not_indexed(org, reporter):
    load_all()
    attestation = attest_sbom(reporter, cyclonedx("pkg:generic/openssl@3.0.0", "pkg:pypi/jinja2@2.10",
                                                  "not-a-purl"))
    matching.index_sbom(attestation.pk)
    assert list(ComponentPackage.objects.values_list("purl", flat=True)) == ["pkg:pypi/jinja2@2.10"]


def test_withdrawn_advisories_are_not_matched_on_arrival(org, reporter):
    load_all()
    load(variant("GHSA-462w-v97r-4m45", lambda r: r.__setitem__("withdrawn", "2024-01-01T00:00:00Z")))
    attestation = attest_sbom(reporter, cyclonedx("pkg:pypi/jinja2@2.10"))
    matching.index_sbom(attestation.pk)
    assert {osv_id for _, osv_id, _ in matched(org)} == {"PYSEC-2019-217"}


def test_an_sbom_is_matched_in_its_own_org_only(org, other_org, reporter, token_for, api):
    load_all()
    other = api(token=token_for(other_org, Role.MEMBER))
    make_flow(other, org="globex")
    begin_trail(other, org="globex")
    mine = attest_sbom(reporter, cyclonedx("pkg:pypi/jinja2@2.10"))
    theirs = attest_sbom(other, cyclonedx("pkg:npm/lodash@4.17.20"), org="globex", fingerprint="6" * 64)
    matching.index_sbom(mine.pk)
    matching.index_sbom(theirs.pk)
    assert {osv_id for _, osv_id, _ in matched(org)} == {"GHSA-462w-v97r-4m45", "PYSEC-2019-217"}
    assert {osv_id for _, osv_id, _ in matched(other_org)} == {"GHSA-35jh-r3h4-6jhm"}
    for match in VulnerabilityMatch.objects.select_related("package"):
        assert match.org_id == match.package.org_id
        assert match.artifact_fingerprint == match.package.artifact_fingerprint


def test_new_matches_are_announced_once_committed(org, reporter, django_capture_on_commit_callbacks):
    load_all()
    calls = []

    def listener(org_id, match_ids, cause):
        calls.append((org_id, sorted(match_ids), cause))

    hooks.matches_added(listener)
    try:
        attestation = attest_sbom(reporter, cyclonedx("pkg:pypi/jinja2@2.10"))
        with django_capture_on_commit_callbacks(execute=True):
            new = matching.index_sbom(attestation.pk)
        with django_capture_on_commit_callbacks(execute=True):
            assert matching.index_sbom(attestation.pk) == []
    finally:
        hooks._matches_added.remove(listener)
    assert calls == [(org.pk, sorted(new), "sbom")]


def test_an_sbom_that_names_no_artifact_yet_waits_for_it(org, reporter):
    load_all()
    commit = "c" * 40
    begin_trail(reporter, name="build-2", commit=commit)
    attestation = attest_sbom(reporter, cyclonedx("pkg:pypi/jinja2@2.10"), trail="build-2", fingerprint=None,
                              data={"target_artifacts": ["backend-image"],
                                    "git_commit_info": {"sha1": commit, "message": "m", "author": "a", "timestamp": 1,
                                                        "branch": "main"}})
    assert matching.index_sbom(attestation.pk) == []
    assert not ComponentPackage.objects.exists()  # packages carry the fingerprint: none until it is known
