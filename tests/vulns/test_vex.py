"""VEX: OpenVEX and CycloneDX VEX documents attested through the real attestation API (as curl and the
kosli CLI send them), stored as statements about the attested artifact, and the suppression rule: the
newest applicable statement decides, per artifact and vulnerability group, with subcomponents narrowing
it, another artifact's digest ignored, any alias naming the group, and one org never seeing another's.

The documents are real ones (``fixtures/vex/SOURCES.md``); the artifact ``NGINX`` has the digest the
vexctl sample names. Advisories, component packages and matches are made through the models, as the
contract between the parts allows."""

import hashlib
import json
from html import unescape
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from evidence.models import Attestation, SbomComponent
from evidence.parsers import vex as vex_parser
from tenants.choices import Role
from tests.conftest import wait_for
from tests.evidence.conftest import attest, begin_trail, cyclonedx_sbom, make_flow, report_artifact, tar_gz  # noqa: F401
from tests.pages import section
from vulns import ecosystems
from vulns.models import Advisory, AdvisoryAlias, ComponentPackage, VexStatement, VulnerabilityMatch
from vulns.vex import index_vex, normal_id, suppressions, waiting_for

FIXTURES = Path(__file__).parent / "fixtures" / "vex"
NGINX = "13d22ec63300e16014d4a42aed735207a8b33c223cff19627dd3042e5a10a3a0"  # the digest sample-history names
OTHER = hashlib.sha256(b"another image").hexdigest()


@pytest.fixture(autouse=True)
def evidence_root(settings, tmp_path):
    root = tmp_path / "evidence-store"
    settings.CSM_EVIDENCE_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def reporter(org, token_for, api):
    return api(token=token_for(org, Role.MEMBER))


@pytest.fixture
def trail(reporter):
    """Flow ``backend``, trail ``build-1`` with the artifacts NGINX and OTHER reported on it."""
    make_flow(reporter)
    begin_trail(reporter, commit="b" * 40)
    for fingerprint, name in ((NGINX, "nginx"), (OTHER, "worker")):
        assert report_artifact(reporter, fingerprint, name=name).status_code in (200, 201)
    return "build-1"


def attest_vex(client, fingerprint, name, files=None, data=None, org="acme", trail="build-1", kind="vex"):
    """POST a vex attestation (files as an uploaded file or tar.gz), then index it as the task does."""
    payload = {"attestation_name": name, **({"artifact_fingerprint": fingerprint} if fingerprint else {}),
               **(data or {})}
    attachment = None
    filename = "evidence.tgz"
    if files:
        if len(files) == 1:
            filename, attachment = next(iter(files.items()))
        else:
            attachment = tar_gz(files)
    return attest(client, org, "backend", trail, kind, payload, attachment, filename)


def attested(response) -> Attestation:
    assert response.status_code == 201, response.content
    attestation = Attestation.objects.get(pk=response.json()["id"])
    index_vex(attestation.pk)
    return attestation


def openvex(statements, timestamp="2026-01-10T10:00:00Z") -> bytes:
    return json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1",
                       "author": "Acme Security", "timestamp": timestamp, "version": 1,
                       "statements": statements}).encode()


def advisory(osv_id: str, group_id: str, aliases=()) -> Advisory:
    now = timezone.now()
    row = Advisory.objects.create(osv_id=osv_id, group_id=group_id, aliases=sorted(aliases), summary=osv_id,
                                  modified=now, content_sha256="0" * 64, record={"id": osv_id})
    for alias in {osv_id, *aliases}:
        AdvisoryAlias.objects.create(advisory=row, alias=alias)
    return row


def group_aliases(*advisories) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in advisories:
        out.setdefault(row.group_id, set()).update({row.osv_id, *row.aliases})
    return out


def packages(org, reporter, fingerprint, sbom: bytes) -> dict[str, ComponentPackage]:
    """Attest the SBOM for ``fingerprint`` and index its components the way matching does (by purl)."""
    response = attest(reporter, "acme", "backend", "build-1", "sbom",
                      {"attestation_name": f"sbom-{fingerprint[:6]}", "artifact_fingerprint": fingerprint},
                      sbom, "sbom.cdx.json")
    assert response.status_code == 201, response.content
    out = {}
    for component in SbomComponent.objects.filter(attestation_id=response.json()["id"]).exclude(purl=""):
        package = ecosystems.from_purl(component.purl)
        if package is None:
            continue
        out[package.name.lower()] = ComponentPackage.objects.create(
            org=org, component=component, attestation_id=component.attestation_id, artifact_fingerprint=fingerprint,
            purl=component.purl, purl_type=package.purl_type, package_key=package.key, version=package.version)
    return out


def match(org, row: Advisory, package: ComponentPackage) -> VulnerabilityMatch:
    return VulnerabilityMatch.objects.create(org=org, advisory=row, package=package,
                                             artifact_fingerprint=package.artifact_fingerprint, group_id=row.group_id)


# --- accepting documents ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_openvex_from_vexctl_is_accepted_and_stored_for_its_artifact(org, reporter, trail):
    attestation = attested(attest_vex(reporter, NGINX, "vex",
                                      {"nginx.openvex.json": fixture("openvex-vexctl-sample-history.openvex.json")}))
    assert attestation.type == "vex" and attestation.is_compliant and attestation.verification == "verified"
    results = attestation.results
    assert results["documents"][0] | {} == {
        "file": "nginx.openvex.json", "format": "OpenVEX", "spec_version": "v0.2.0", "author": "The OpenVEX Project",
        "document_id": "https://openvex.dev/docs/public/vex-cbce60e4c921512c381e3234db5f9bd19704658a1b670e196d42a96f3dd80cd3",
        "timestamp": "2023-08-16T19:55:22.076684217-06:00", "statement_count": 2}
    first = results["statements"][0]
    assert (first["vulnerability"], first["aliases"], first["status"], first["justification"]) == (
        "CVE-2023-27103", ["SNYK-DEBIAN12-LIBDE265-3361563"], "not_affected", "component_not_present")
    assert first["products"][0]["digests"] == [NGINX]
    # the second statement inherits the document's timestamp (OpenVEX inheritance)
    assert results["statements"][1]["timestamp"] == "2023-08-16T19:55:22.076684217-06:00"
    rows = VexStatement.objects.for_org(org).filter(attestation=attestation)
    assert {(r.vulnerability_id, r.status, r.justification, r.artifact_fingerprint) for r in rows} == {
        ("CVE-2023-27103", "not_affected", "component_not_present", NGINX),
        ("SNYK-DEBIAN12-LIBDE265-3361563", "not_affected", "component_not_present", NGINX)}


@pytest.mark.django_db
def test_cyclonedx_vex_from_the_cisa_examples_is_accepted(org, reporter, trail):
    attestation = attested(attest_vex(reporter, NGINX, "vex",
                                      {"vex.cdx.json": fixture("cyclonedx-cisa-case1-not_affected.json")}))
    statement = attestation.results["statements"][0]
    assert attestation.results["documents"][0]["format"] == "CycloneDX"
    assert attestation.results["documents"][0]["spec_version"] == "1.4"
    assert statement["products"] == [{"id": "product-ABC", "kind": "artifact", "purl": "", "digests": [],
                                      "subcomponents": []}]
    row = VexStatement.objects.for_org(org).get(attestation=attestation)
    assert (row.vulnerability_id, row.status, row.justification, row.action_statement) == (
        "CVE-2021-44228", "not_affected", "code_not_present", "will_not_fix")
    assert row.impact_statement.startswith("This version of Product ABC is not affected")
    assert row.subcomponents == []


@pytest.mark.django_db
def test_cyclonedx_bom_link_ref_narrows_to_the_component_it_names(org, reporter, trail):
    attestation = attested(attest_vex(reporter, NGINX, "vex", {"vex.json": fixture("cyclonedx-vex-bom-link.json")}))
    statement = attestation.results["statements"][0]
    assert statement["products"][0]["kind"] == "package"
    assert statement["products"][0]["purl"] == "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar"
    assert statement["aliases"] == ["SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302"]
    row = VexStatement.objects.for_org(org).filter(attestation=attestation, vulnerability_id="CVE-2020-25649").get()
    assert row.subcomponents == ["pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar"]


@pytest.mark.django_db
def test_kosli_attest_custom_type_vex_carries_the_document_in_attestation_data(org, reporter, trail):
    """``kosli attest custom --type vex --attestation-data vex.json``: the CLI has no vex command; the custom
    command's payload carries the document, and csm records a vex attestation."""
    document = json.loads(fixture("openvex-vexctl-oci.openvex.json"))
    attestation = attested(attest_vex(reporter, NGINX, "vex", data={"type_name": "vex", "attestation_data": document},
                                      kind="custom"))
    assert attestation.type == "vex" and attestation.custom_type_id is None
    assert attestation.summary["attestation_data"] == document
    row = VexStatement.objects.for_org(org).get(attestation=attestation)
    assert (row.vulnerability_id, row.status, row.justification) == (
        "CVE-2014-12345678", "not_affected", "vulnerable_code_not_present")
    assert row.subcomponents == []  # pkg:oci/vexctl names no digest: the attested artifact, all of it


@pytest.mark.django_db
@pytest.mark.parametrize("document, field, problem", [
    (b'{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [', "attachment_file", "malformed JSON"),
    (b'{"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}', "attachment_file",
     "statements must be a non-empty list"),
    (openvex([{"vulnerability": {"name": "CVE-2021-44228"}, "status": "exploitable"}]), "attachment_file",
     "statements[0].status must be one of not_affected, affected, fixed, under_investigation"),
    (openvex([{"vulnerability": {}, "status": "fixed"}]), "attachment_file",
     "statements[0].vulnerability.name is required"),
    (openvex([{"vulnerability": {"name": "CVE-2021-44228"}, "status": "not_affected", "justification": "trust_me"}]),
     "attachment_file", "statements[0].justification 'trust_me' is not an OpenVEX label"),
    (openvex([{"vulnerability": {"name": "CVE-2021-44228"}, "status": "fixed", "products": "pkg:oci/app"}]),
     "attachment_file", "statements[0].products must be a list"),
    (openvex([{"vulnerability": {"name": "CVE-2021-44228"}, "status": "fixed", "timestamp": "yesterday"}]),
     "attachment_file", "statements[0].timestamp is not an RFC 3339 timestamp"),
    (json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "vulnerabilities": [
        {"id": "CVE-2021-44228", "analysis": {"state": "maybe"}}]}).encode(), "attachment_file",
     "vulnerabilities[0].analysis.state must be one of"),
    (json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}).encode(), "attachment_file",
     "this looks like an SBOM: attest it as sbom"),
    (json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "vulnerabilities": [
        {"id": "CVE-2021-44228", "analysis": {"state": "not_affected", "justification": "because"}}]}).encode(),
     "attachment_file", "vulnerabilities[0].analysis.justification 'because' is not a CycloneDX label"),
    (b'{"hello": "world"}', "attachment_file", "needs an OpenVEX or CycloneDX VEX JSON file"),
])
def test_bad_documents_are_400_naming_the_problem(org, reporter, trail, document, field, problem):
    response = attest_vex(reporter, NGINX, "vex", {"vex.json": document})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert problem in error["message"]
    assert list(error["fields"]) == [field]
    assert not Attestation.objects.filter(org=org, type="vex").exists()  # nothing half-written


@pytest.mark.django_db
def test_openvex_not_affected_needs_a_justification_or_an_impact_statement(org, reporter, trail):
    bare = {"vulnerability": {"name": "CVE-2021-44228"}, "status": "not_affected"}
    response = attest_vex(reporter, NGINX, "vex", {"vex.json": openvex([bare])})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "vex.json: statements[0] is not_affected without a justification or an impact_statement "
        "(OpenVEX requires one of them)")
    with_impact = bare | {"impact_statement": "log4j-core is on the classpath but JNDI lookups are disabled"}
    attested(attest_vex(reporter, NGINX, "vex", {"vex.json": openvex([with_impact])}))
    assert VexStatement.objects.for_org(org).get().impact_statement.startswith("log4j-core is on the classpath")


@pytest.mark.django_db
def test_a_document_over_the_statement_limit_is_refused_not_cut(org, reporter, trail):
    statement = {"vulnerability": {"name": "CVE-2021-44228"}, "status": "under_investigation"}
    response = attest_vex(reporter, NGINX, "vex", {"vex.json": openvex([statement] * (vex_parser.MAX_STATEMENTS + 1))})
    assert response.status_code == 400
    assert "vex.json: more than 10000 statements (the limit)" in response.json()["error"]["message"]
    deep = b'{"@context": "https://openvex.dev/ns/v0.2.0", "statements": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = attest_vex(reporter, NGINX, "vex", {"vex.json": deep})
    assert response.status_code == 400 and "nested more than" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_custom_vex_with_a_document_of_another_kind_is_400(org, reporter, trail):
    response = attest_vex(reporter, NGINX, "vex", data={"type_name": "vex", "attestation_data": {"line": 91}},
                          kind="custom")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["data_json"]
    assert "neither an OpenVEX document" in response.json()["error"]["message"]


# --- which artifact a statement is about ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_product_naming_another_image_digest_does_not_apply(org, reporter, trail):
    """vexctl's sample names pkg:oci/nginx@sha256:13d2…: attested about another artifact it stores nothing
    (and the page says why), attested about that digest it applies."""
    cve = advisory("CVE-2023-27103", "CVE-2023-27103")
    other = attested(attest_vex(reporter, OTHER, "vex",
                                {"nginx.openvex.json": fixture("openvex-vexctl-sample-history.openvex.json")}))
    assert not VexStatement.objects.filter(attestation=other).exists()
    assert suppressions(org, [OTHER, NGINX], group_aliases(cve)) == {}
    attested(attest_vex(reporter, NGINX, "vex",
                        {"nginx.openvex.json": fixture("openvex-vexctl-sample-history.openvex.json")}))
    assert set(suppressions(org, [OTHER, NGINX], group_aliases(cve))) == {(NGINX, "CVE-2023-27103")}


@pytest.mark.django_db
def test_a_vex_about_the_trail_suppresses_nothing(org, reporter, trail):
    attestation = attested(attest_vex(reporter, None, "vex",
                                      {"vex.json": fixture("cyclonedx-cisa-case1-not_affected.json")}))
    assert index_vex(attestation.pk) == 0
    assert not VexStatement.objects.exists()


@pytest.mark.django_db
def test_a_vex_made_before_its_artifact_applies_once_the_artifact_is_reported(org, reporter, trail):
    """``kosli attest … --name nginx.vex --commit C`` before the build reports the artifact: bound (and
    indexed) when the artifact arrives."""
    later = hashlib.sha256(b"nginx:2").hexdigest()
    response = attest_vex(reporter, None, "vex", {"vex.json": fixture("cyclonedx-cisa-case1-not_affected.json")},
                          data={"target_artifacts": ["nginx-next"], "git_commit_info": {
                              "sha1": "c" * 40, "message": "m", "author": "a", "timestamp": 1, "branch": "main"}})
    attestation = attested(response)
    assert index_vex(attestation.pk) == 0
    reported = report_artifact(reporter, later, name="nginx-next", commit="c" * 40)
    assert reported.status_code in (200, 201), reported.content
    artifact_id = Attestation.objects.get(pk=attestation.pk).artifact_id
    assert waiting_for(artifact_id) == [attestation.pk]
    assert index_vex(attestation.pk) == 1
    assert waiting_for(artifact_id) == []
    cve = advisory("CVE-2021-44228", "CVE-2021-44228")
    assert suppressions(org, [later], group_aliases(cve))[(later, "CVE-2021-44228")]["status"] == "not_affected"


@pytest.mark.django_db
def test_indexing_twice_stores_the_statements_once(org, reporter, trail):
    attestation = attested(attest_vex(reporter, NGINX, "vex",
                                      {"nginx.openvex.json": fixture("openvex-vexctl-sample-history.openvex.json")}))
    before = VexStatement.objects.filter(attestation=attestation).count()
    assert index_vex(attestation.pk) == before
    assert VexStatement.objects.filter(attestation=attestation).count() == before == 4  # 2 statements × 2 ids


# --- suppression ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_not_affected_suppresses_and_a_newer_affected_unsuppresses(org, reporter, trail):
    log4shell = advisory("GHSA-jfh8-c2jp-5v3q", "CVE-2021-44228", ["CVE-2021-44228"])
    groups = group_aliases(log4shell)
    assert suppressions(org, [NGINX], groups) == {}
    first = attested(attest_vex(reporter, NGINX, "vex",
                                {"vex.json": fixture("cyclonedx-cisa-case1-not_affected.json")}))
    found = suppressions(org, [NGINX], groups)[(NGINX, "CVE-2021-44228")]
    assert (found["status"], found["justification"], found["attestation_id"], found["vulnerability_id"]) == (
        "not_affected", "code_not_present", first.pk, "CVE-2021-44228")
    assert found["created_at"] == first.created_at
    attested(attest_vex(reporter, NGINX, "vex", {"vex.json": fixture("cyclonedx-cisa-case1-affected.json")}))
    assert suppressions(org, [NGINX], groups) == {}  # exploitable → affected, newer: it decides
    # fixed suppresses too (a third, newer statement)
    fixed = {"vulnerability": {"name": "CVE-2021-44228"}, "status": "fixed"}
    third = attested(attest_vex(reporter, NGINX, "vex", {"vex.json": openvex([fixed])}))
    assert suppressions(org, [NGINX], groups)[(NGINX, "CVE-2021-44228")]["attestation_id"] == third.pk


@pytest.mark.django_db
def test_within_one_document_the_later_statement_decides(org, reporter, trail):
    """The OpenVEX spec's own inheritance example: under_investigation at 18:02, fixed at the document's
    later time — the statement order in the file does not matter, their times do."""
    cve = advisory("CVE-2023-12345", "CVE-2023-12345")
    statements = [{"vulnerability": {"name": "CVE-2023-12345"}, "status": "fixed"},
                  {"timestamp": "2023-01-08T18:02:03-06:00", "vulnerability": {"name": "CVE-2023-12345"},
                   "status": "under_investigation"}]
    attested(attest_vex(reporter, NGINX, "vex", {"vex.json": openvex(statements, "2023-01-09T09:08:42-06:00")}))
    assert suppressions(org, [NGINX], group_aliases(cve))[(NGINX, "CVE-2023-12345")]["status"] == "fixed"


@pytest.mark.django_db
def test_subcomponents_narrow_a_statement_to_those_components(org, reporter, trail, cyclonedx_sbom):  # noqa: F811
    """A statement narrowed to pip suppresses a vulnerability matched on pip only; once the same group also
    matches setuptools in that artifact, the artifact is exposed through setuptools and nothing is
    suppressed."""
    found = packages(org, reporter, NGINX, cyclonedx_sbom)
    assert {"pip", "setuptools"} <= set(found), sorted(found)
    pip_advisory = advisory("GHSA-mq26-g339-26xf", "CVE-2023-5752", ["CVE-2023-5752"])
    match(org, pip_advisory, found["pip"])
    groups = group_aliases(pip_advisory)
    narrowed = {"vulnerability": {"name": "CVE-2023-5752"}, "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
                "products": [{"@id": f"pkg:oci/nginx@sha256:{NGINX}",
                              "subcomponents": [{"@id": "pkg:pypi/pip"}]}]}
    attested(attest_vex(reporter, NGINX, "vex", {"vex.json": openvex([narrowed])}))
    assert VexStatement.objects.get(vulnerability_id="CVE-2023-5752").subcomponents == ["pkg:pypi/pip"]
    assert suppressions(org, [NGINX], groups)[(NGINX, "CVE-2023-5752")]["subcomponents"] == ["pkg:pypi/pip"]
    setuptools_advisory = advisory("PYSEC-2099-1", "CVE-2023-5752", ["CVE-2023-5752"])
    match(org, setuptools_advisory, found["setuptools"])
    assert suppressions(org, [NGINX], group_aliases(pip_advisory, setuptools_advisory)) == {}


@pytest.mark.django_db
def test_a_package_product_names_one_version(org, reporter, trail, cyclonedx_sbom):  # noqa: F811
    """A package purl as the product covers that package, and only the version it names."""
    found = packages(org, reporter, NGINX, cyclonedx_sbom)
    pip = found["pip"]
    cve = advisory("CVE-2023-5752", "CVE-2023-5752")
    match(org, cve, pip)
    wrong_version = {"vulnerability": {"name": "CVE-2023-5752"}, "status": "fixed",
                     "products": [{"@id": "pkg:pypi/pip@0.0.1"}]}
    attested(attest_vex(reporter, NGINX, "old", {"vex.json": openvex([wrong_version])}))
    assert suppressions(org, [NGINX], group_aliases(cve)) == {}
    right_version = {"vulnerability": {"name": "CVE-2023-5752"}, "status": "fixed",
                     "products": [{"@id": f"pkg:pypi/pip@{pip.version}"}]}
    attested(attest_vex(reporter, NGINX, "new", {"vex.json": openvex([right_version])}))
    assert set(suppressions(org, [NGINX], group_aliases(cve))) == {(NGINX, "CVE-2023-5752")}


@pytest.mark.django_db
def test_a_vex_naming_the_ghsa_id_suppresses_the_cve_group(org, reporter, trail):
    log4shell = advisory("GHSA-jfh8-c2jp-5v3q", "CVE-2021-44228", ["CVE-2021-44228"])
    by_ghsa = {"vulnerability": {"name": "GHSA-JFH8-C2JP-5V3Q"}, "status": "not_affected",
               "justification": "vulnerable_code_not_present"}
    attested(attest_vex(reporter, NGINX, "vex", {"vex.json": openvex([by_ghsa])}))
    found = suppressions(org, [NGINX], group_aliases(log4shell))
    assert found[(NGINX, "CVE-2021-44228")]["vulnerability_id"] == "GHSA-jfh8-c2jp-5v3q"  # as the VEX names it
    # and an alias the advisory database does not list: the VEX's own aliases name the group
    osv_only = advisory("CVE-2023-27103", "CVE-2023-27103")
    by_alias = {"vulnerability": {"name": "DSA-5400-1", "aliases": ["cve-2023-27103"]}, "status": "fixed"}
    attested(attest_vex(reporter, NGINX, "vex2", {"vex.json": openvex([by_alias])}))
    assert (NGINX, "CVE-2023-27103") in suppressions(org, [NGINX], group_aliases(osv_only))


@pytest.mark.django_db
def test_suppressions_are_per_org(org, other_org, reporter, trail, token_for, api):
    """Another org running the same image digest is not suppressed by this org's VEX, and its own VEX
    does not reach this org."""
    cve = advisory("CVE-2021-44228", "CVE-2021-44228")
    attested(attest_vex(reporter, NGINX, "vex", {"vex.json": fixture("cyclonedx-cisa-case1-not_affected.json")}))
    assert suppressions(other_org, [NGINX], group_aliases(cve)) == {}
    theirs = api(token=token_for(other_org, Role.MEMBER))
    make_flow(theirs, org="globex")
    begin_trail(theirs, org="globex", commit="b" * 40)
    attested(attest_vex(theirs, NGINX, "vex", {"vex.json": fixture("cyclonedx-cisa-case1-affected.json")},
                        org="globex"))
    assert suppressions(org, [NGINX], group_aliases(cve))[(NGINX, "CVE-2021-44228")]["status"] == "not_affected"
    assert suppressions(other_org, [NGINX], group_aliases(cve)) == {}


@pytest.mark.django_db
def test_suppressions_for_many_artifacts_take_one_query(org, reporter, trail, django_assert_num_queries):
    cve = advisory("CVE-2021-44228", "CVE-2021-44228")
    fingerprints = [hashlib.sha256(f"image-{i}".encode()).hexdigest() for i in range(40)]
    for fingerprint in fingerprints[:5]:
        attested(attest_vex(reporter, fingerprint, "vex",
                            {"vex.json": fixture("cyclonedx-cisa-case1-not_affected.json")}))
    with django_assert_num_queries(1):
        found = suppressions(org, fingerprints + [NGINX], group_aliases(cve))
    assert set(found) == {(fingerprint, "CVE-2021-44228") for fingerprint in fingerprints[:5]}


def test_ids_compare_in_one_spelling():
    assert normal_id(" cve-2021-44228 ") == "CVE-2021-44228"
    assert normal_id("GHSA-JFH8-C2JP-5V3Q") == "GHSA-jfh8-c2jp-5v3q"
    assert normal_id("pysec-2023-228") == "PYSEC-2023-228"
    assert normal_id("SNYK-DEBIAN12-LIBDE265-3361563") == "SNYK-DEBIAN12-LIBDE265-3361563"


# --- the attestation page ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_attestation_page_shows_each_statement_and_what_it_covers(org, owner, client, reporter, trail):
    statements = [{"vulnerability": {"name": "CVE-2023-5752", "aliases": ["GHSA-mq26-g339-26xf"]},
                   "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
                   "impact_statement": "pip is only used at build time",
                   "products": [{"@id": f"pkg:oci/nginx@sha256:{NGINX}", "subcomponents": [{"@id": "pkg:pypi/pip"}]}]},
                  {"vulnerability": {"name": "CVE-2023-27103"}, "status": "affected",
                   "action_statement": "upgrade libde265", "products": [{"@id": f"pkg:oci/nginx@sha256:{OTHER}"}]}]
    attestation = attested(attest_vex(reporter, NGINX, "vex", {"vex.json": openvex(statements)}))
    client.force_login(owner)
    url = reverse("attestation-detail", args=["acme", "backend", "build-1", attestation.pk])
    html = unescape(client.get(url).content.decode())
    table = section(html, "vex-statements")
    assert "CVE-2023-5752" in table and "GHSA-mq26-g339-26xf" in table and "pip is only used at build time" in table
    assert "only pkg:pypi/pip" in table  # narrowed to the subcomponent
    assert "another artifact" in table and "upgrade libde265" in table
    assert "not affected 1 · affected 1 · fixed 0" in section(html, "vex-summary")
    filtered = unescape(client.get(url, {"status": "affected"}).content.decode())
    assert "CVE-2023-27103" in section(filtered, "vex-statements")
    assert "CVE-2023-5752" not in section(filtered, "vex-statements")
    listed = unescape(client.get(reverse("trail-detail", args=["acme", "backend", "build-1"])).content.decode())
    assert "OpenVEX: 2 statements · not affected 1 · affected 1 · fixed 0" in listed
    trail_level = attested(attest_vex(reporter, None, "trail-vex", {"vex.json": openvex(statements)}))
    html = unescape(client.get(reverse("attestation-detail", args=["acme", "backend", "build-1",
                                                                  trail_level.pk])).content.decode())
    assert "suppress nothing" in section(html, "vex-no-artifact")


# --- with a real worker ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_real_worker_indexes_vex_attestations_after_they_commit_and_when_bound(org, reporter, celery_worker):
    make_flow(reporter)
    begin_trail(reporter, commit="b" * 40)
    response = attest_vex(reporter, NGINX, "vex",
                          {"nginx.openvex.json": fixture("openvex-vexctl-sample-history.openvex.json")})
    assert response.status_code == 201, response.content
    rows = wait_for(lambda: list(VexStatement.objects.filter(attestation_id=response.json()["id"])),
                    "the worker to store the statements")
    assert {row.vulnerability_id for row in rows} == {"CVE-2023-27103", "SNYK-DEBIAN12-LIBDE265-3361563"}
    # made before its artifact: indexed by the worker once the artifact's report binds it
    later = hashlib.sha256(b"nginx:2").hexdigest()
    early = attest_vex(reporter, None, "early-vex", {"vex.json": fixture("cyclonedx-cisa-case1-not_affected.json")},
                       data={"target_artifacts": ["nginx-next"], "git_commit_info": {
                           "sha1": "c" * 40, "message": "m", "author": "a", "timestamp": 1, "branch": "main"}})
    assert early.status_code == 201, early.content
    assert report_artifact(reporter, later, name="nginx-next", commit="c" * 40).status_code in (200, 201)
    bound = wait_for(lambda: list(VexStatement.objects.filter(attestation_id=early.json()["id"])),
                     "the worker to index the VEX bound to the new artifact")
    assert [(row.artifact_fingerprint, row.vulnerability_id) for row in bound] == [(later, "CVE-2021-44228")]


def test_package_products_narrow_a_statement_to_those_packages():
    """vexctl's demo: ``fixed`` for two apk packages. Attached to an image, it covers those packages in it,
    not the whole image."""
    document = vex_parser.parse("demo.vex.json", fixture("openvex-vexctl-demo.vex.json"))
    statement = document["statements"][0]
    assert [(p["kind"], p["purl"]) for p in statement["products"]] == [
        ("package", "pkg:apk/distro/git@2.39.0-r1?arch=armv7"), ("package", "pkg:apk/distro/git@2.39.0-r1?arch=x86_64")]
    assert vex_parser.statement_scope(statement, NGINX) == [
        "pkg:apk/distro/git@2.39.0-r1?arch=armv7", "pkg:apk/distro/git@2.39.0-r1?arch=x86_64"]
