"""Exposure windows (vulns/exposure.py) read from a snapshot history built with the real snapshot
services: start, scale, exit, restart, upgrade, in two environments."""

from datetime import timedelta

import pytest

from evidence.models import Attestation
from snapshots.models import Snapshot
from snapshots.services.environments import create_or_update_environment
from tests.vulns.exposure_support import (
    DB,
    FIXED,
    LEGACY,
    T0,
    WEB,
    History,
    _trail,
    advisory,
    build_cve,
    fp,
    match,
    sbom,
    vex_statement,
)
from vulns import exposure

pytestmark = pytest.mark.django_db



@pytest.fixture
def cve(org):
    return build_cve(org)


def at(h, env_name, index):
    return Snapshot.objects.get(environment=h.envs[env_name], index=index)


def test_windows_match_the_snapshot_history_exactly(history, cve, org):
    answer = exposure.vulnerability_exposure(org, cve)
    # prod: [1, 3) merged across the scale, then [4, …) after the restart; staging: [1, 2) until the upgrade.
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in answer["history"]] == [
        ("prod", 1, 3), ("staging", 1, 2)]
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in answer["running"]] == [("prod", 4, None)]
    first, staging = answer["history"]
    assert first["from"] == T0 == at(history, "prod", 1).created_at
    assert first["to"] == T0 + timedelta(hours=2) == at(history, "prod", 3).created_at
    assert staging["from"] == T0 + timedelta(hours=4) and staging["to"] == T0 + timedelta(hours=5)
    running = answer["running"][0]
    assert running["from"] == T0 + timedelta(hours=3) and running["to"] is None and running["running"]
    # Each boundary carries the journal leaf of its snapshot, for an auditor to check.
    assert first["from_journal_index"] == at(history, "prod", 1).leaf.index
    assert first["to_journal_index"] == at(history, "prod", 3).leaf.index
    assert running["to_journal_index"] is None
    for window in answer["running"] + answer["history"]:
        assert window["fingerprint"] == WEB and window["artifact_name"] == "web"
        assert window["components"] == ["pkg:pypi/jinja2@2.10"]  # flask is not affected
    assert answer["suppressed"] == []
    assert answer["matched_fingerprints"] == [WEB]


def test_one_image_under_two_names_is_one_window(org, cve, django_capture_on_commit_callbacks):
    """The same image deployed as api and worker, overlapping: one window for the fingerprint, from the
    first start to the last exit, with both names."""
    h = History(org, django_capture_on_commit_callbacks)
    h.report("prod", ("api", WEB))                    # #1
    h.report("prod", ("api", WEB), ("worker", WEB))   # #2
    h.report("prod", ("worker", WEB))                 # #3
    h.report("prod", ("db", DB))                      # #4
    [window] = exposure.vulnerability_exposure(org, cve)["history"]
    assert (window["from_index"], window["to_index"]) == (1, 4)
    assert window["artifact_name"] == "api" and window["artifact_names"] == ["api", "worker"]


def test_one_environment_only(history, cve, org):
    answer = exposure.vulnerability_exposure(org, cve, environment=history.envs["staging"])
    assert answer["running"] == []
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in answer["history"]] == [("staging", 1, 2)]
    assert [c["fingerprint"] for c in answer["coverage_unknown"]] == [LEGACY]


def test_a_logical_environment_stands_for_its_members(history, cve, org):
    everything, _ = create_or_update_environment(history.ctx, org, "everywhere", "logical",
                                                 included_environments=["staging"])
    answer = exposure.vulnerability_exposure(org, cve, environment=everything)
    assert [(w["environment"], w["from_index"], w["to_index"]) for w in answer["history"]] == [("staging", 1, 2)]
    assert answer["running"] == [] and [c["fingerprint"] for c in answer["coverage_unknown"]] == [LEGACY]


def test_running_artifacts_without_an_sbom_are_coverage_unknown(history, cve, org):
    """legacy runs in staging with no SBOM: listed, so the answer does not look cleaner than it is; web,
    fixed and db have SBOMs (db's has no affected component: covered, not unknown)."""
    unknown = exposure.vulnerability_exposure(org, cve)["coverage_unknown"]
    assert [(c["environment"], c["artifact_name"], c["fingerprint"], c["reason"], c["from_index"])
            for c in unknown] == [("staging", "legacy", LEGACY, "no_sbom", 1)]
    assert unknown[0]["since"] is not None


def test_an_artifact_whose_digest_the_agent_could_not_resolve_is_coverage_unknown(history, cve, org):
    """ECS agents may report a container whose image digest they could not read: csm cannot know what
    it contains, so it is listed (by name) rather than left out."""
    task = {"taskArn": "arn:aws:ecs:eu-west-1:1:task/abc", "cluster_name": "c", "service_name": "s",
            "creationTimestamp": 1_700_000_000}
    history.send("ecs", {"artifacts": [{**task, "digests": {"api": WEB, "sidecar": ""}}]}, env_type="ECS")
    unknown = exposure.coverage_unknown(org, history.envs["ecs"])
    assert [(c["artifact_name"], c["fingerprint"], c["reason"]) for c in unknown] == [
        ("sidecar", "", "unknown_fingerprint")]
    assert [w["environment"] for w in exposure.vulnerability_exposure(org, cve)["running"]] == ["prod", "ecs"]


def test_an_sbom_attestation_without_indexed_components_covers_the_artifact(history, cve, org):
    """An SBOM that lists nothing matchable (or is still being indexed) is still an SBOM: csm knows what
    the artifact contains."""
    flow, trail = _trail(org)
    Attestation.objects.create(org=org, flow=flow, trail=trail, artifact_fingerprint=LEGACY, name="sbom",
                               type="sbom", is_compliant=True)
    assert exposure.coverage_unknown(org) == []


def test_an_unvulnerable_answer_still_states_coverage_gaps(history, org):
    """A vulnerability matching nothing in an org without any SBOM: no windows, and every running
    artifact is listed as coverage unknown (none of them is known to be free of it)."""
    advisory("GHSA-xxxx-yyyy-zzzz", affected=(("npm", "lodash"),))
    answer = exposure.vulnerability_exposure(org, "GHSA-xxxx-yyyy-zzzz")
    assert answer["running"] == answer["history"] == answer["suppressed"] == []
    assert sorted((c["environment"], c["artifact_name"]) for c in answer["coverage_unknown"]) == [
        ("prod", "db"), ("prod", "web"), ("staging", "legacy"), ("staging", "web")]


def test_another_orgs_history_is_invisible(history, cve, org, other_org, django_capture_on_commit_callbacks):
    """globex runs the same image with a matching SBOM of its own: acme's answer does not show it, and
    globex's shows only its own window."""
    theirs = History(other_org, django_capture_on_commit_callbacks)
    theirs.report("prod", ("web", WEB))
    ghsa = advisory("GHSA-other-only-0001", group_id="CVE-2019-10906")
    match(other_org, ghsa, sbom(other_org, WEB, "pkg:pypi/jinja2@2.10")["pkg:pypi/jinja2@2.10"])
    ours = exposure.vulnerability_exposure(org, cve)
    assert {w["environment_id"] for w in ours["running"] + ours["history"]} <= {e.pk for e in history.envs.values()}
    assert len(ours["running"]) == 1
    assert [w["environment_id"] for w in exposure.vulnerability_exposure(other_org, cve)["running"]] == [
        theirs.envs["prod"].pk]


def test_withdrawn_advisories_expose_nothing(history, org):
    withdrawn = advisory("GHSA-gone-gone-gone", withdrawn=T0)
    match(org, withdrawn, sbom(org, fp(77), "pkg:pypi/jinja2@2.9")["pkg:pypi/jinja2@2.9"])
    history.report("prod", ("db", DB), ("old", fp(77)))
    answer = exposure.vulnerability_exposure(org, "GHSA-gone-gone-gone")
    assert answer["running"] == [] and answer["matched_fingerprints"] == []


def test_resolve_group_by_any_alias_in_any_case(cve):
    for spelling in ("CVE-2019-10906", "cve-2019-10906", "GHSA-462w-v97r-4m45", "ghsa-462W-V97R-4M45",
                     "PYSEC-2019-217", "pysec-2019-217"):
        assert exposure.resolve_group(spelling) == cve, spelling
    assert exposure.resolve_group("CVE-2000-0001") is None
    assert exposure.resolve_group("") is None


def test_artifact_vulnerabilities_worst_first(history, cve, org):
    critical = advisory("GHSA-crit-crit-crit", severity="critical", cvss_score=9.8,
                        affected=(("PyPI", "flask"),), summary="Flask critical")
    unknown = advisory("PYSEC-2099-1", severity="unknown", affected=(("PyPI", "flask"),))
    low = advisory("GHSA-loww-loww-loww", severity="low", cvss_score=2.0, affected=(("PyPI", "flask"),))
    packages = {p.purl: p for p in exposure.ComponentPackage.objects.filter(artifact_fingerprint=WEB)}
    for item in (critical, unknown, low):
        match(org, item, packages["pkg:pypi/flask@1.0"], fixed=["2.3.2"])
    found = exposure.artifact_vulnerabilities(org, [WEB, FIXED, LEGACY])
    assert set(found) == {WEB}  # FIXED matches nothing, LEGACY has no SBOM: no key
    groups = found[WEB]
    assert [g["group_id"] for g in groups] == ["GHSA-crit-crit-crit", cve, "GHSA-loww-loww-loww", "PYSEC-2099-1"]
    jinja = groups[1]
    # The group takes its worst known severity (GHSA says high, PYSEC says unknown) and every alias.
    assert jinja["severity"] == "high" and jinja["cvss_score"] == 8.6
    assert jinja["osv_ids"] == ["GHSA-462w-v97r-4m45", "PYSEC-2019-217"]
    assert jinja["aliases"] == ["CVE-2019-10906", "GHSA-462w-v97r-4m45", "PYSEC-2019-217"]
    assert jinja["components"] == ["pkg:pypi/jinja2@2.10"] and jinja["fixed"] == ["2.10.1"]
    assert jinja["summary"] == "Jinja2 sandbox escape via string formatting"
    assert jinja["suppressed"] is None and jinja["first_matched_at"] is not None
    assert exposure.artifact_vulnerabilities(org, []) == {}


def test_fixed_number_of_queries_however_many_windows(org, cve, django_capture_on_commit_callbacks,
                                                       django_assert_max_num_queries):
    h = History(org, django_capture_on_commit_callbacks)
    for cycle in range(12):  # twelve start / exit cycles in three environments: 36 windows
        for env_name in ("a", "b", "c"):
            running = [("web", WEB), ("db", DB)] if cycle % 2 == 0 else [("db", DB)]
            h.report(env_name, *running)
    for env_name in ("a", "b", "c"):
        h.report(env_name, ("web", WEB), ("db", DB))
    with django_assert_max_num_queries(8):
        answer = exposure.vulnerability_exposure(org, cve)
    assert len(answer["history"]) == 18 and len(answer["running"]) == 3
    with django_assert_max_num_queries(4):
        exposure.artifact_vulnerabilities(org, [WEB, DB, FIXED])


def test_vex_not_affected_suppresses_but_never_drops(history, cve, org):
    """a not_affected statement for web moves its windows to
    ``suppressed``, each with the justification; nothing disappears."""
    vex_statement(org, WEB, "GHSA-462w-v97r-4m45")
    answer = exposure.vulnerability_exposure(org, cve)
    assert answer["running"] == answer["history"] == []
    assert [(w["environment"], w["from_index"], w["to_index"], w["running"]) for w in answer["suppressed"]] == [
        ("prod", 1, 3, False), ("prod", 4, None, True), ("staging", 1, 2, False)]
    assert {w["suppression"]["justification"] for w in answer["suppressed"]} == {"vulnerable_code_not_in_execute_path"}
    assert exposure.artifact_vulnerabilities(org, [WEB])[WEB][0]["suppressed"]["status"] == "not_affected"
