"""The page of one attestation: header (result, override, reporter, subject, journal, evidence files as
downloads) and the details of each type, from files made by the real tools (pytest, bandit, ruff,
cyclonedx-py), sent the way the kosli CLI sends them."""

import json
import os
import subprocess
import sys
from html import unescape

import pytest
from django.urls import reverse

from evidence.models import Attestation, Flow, Trail
from evidence.parsers import junit
from tenants.choices import Role
from tests.evidence.conftest import VENV_BIN, attest, begin_trail, make_flow, tar_gz
from tests.pages import section

pytestmark = pytest.mark.django_db


@pytest.fixture
def ci(org, token_for, api):
    """The CI pipeline: a member-role service account named github-actions."""
    return api(token=token_for(org, Role.MEMBER, name="github-actions"))


@pytest.fixture
def trail(ci):
    make_flow(ci)
    begin_trail(ci, commit="b" * 40)
    return "build-1"


@pytest.fixture
def web(client, owner):
    client.force_login(owner)
    return client


def page(web, attestation_id, flow="backend", trail="build-1", **params):
    response = web.get(reverse("attestation-detail", args=["acme", flow, trail, attestation_id]), params)
    assert response.status_code == 200, response.status_code
    return unescape(response.content.decode())


def _pytest_junit(tmp_path, source: str) -> bytes:
    (tmp_path / "test_generated.py").write_text(source)
    report = tmp_path / "report.xml"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO", "PYTEST"))}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
                          f"--junitxml={report}", "--rootdir", str(tmp_path), "-c", "/dev/null",
                          str(tmp_path / "test_generated.py")], cwd=tmp_path, capture_output=True, check=False,
                         env=env)
    assert report.exists(), run.stdout + run.stderr
    return report.read_bytes()


# --- JUnit -------------------------------------------------------------------------------------------


def test_junit_page_names_the_failing_test_its_message_and_output(ci, trail, web, pytest_junit_xml):
    created = attest(ci, "acme", "backend", trail, "junit", {"attestation_name": "unit-tests"},
                     tar_gz({"results/report.xml": pytest_junit_xml})).json()
    html = page(web, created["id"])
    assert "non-compliant" in html
    assert "4</strong> tests · <strong>1</strong> failed" in html
    failures = section(html, "junit-failures")
    assert "test_broken" in failures and "test_sample" in failures  # test name and class name
    assert "assert (2 * 2) == 5" in failures  # the failure message
    assert "def test_broken():" in failures  # the failure text pytest wrote
    assert "test_adds" not in failures  # passing tests are not listed as failures
    skipped = section(html, "junit-skipped")
    assert "test_later" in skipped and "later" in skipped
    # the reporter: the CI's service account, from the attestation's audit event
    assert "github-actions (" in section(html, "reporter") and "Service account" in section(html, "reporter")
    # the trail's row links to this page
    trail_page = web.get(reverse("trail-detail", args=["acme", "backend", "build-1"])).content.decode()
    assert reverse("attestation-detail", args=["acme", "backend", "build-1", created["id"]]) in trail_page


def test_junit_details_are_bounded_and_the_page_says_so(ci, trail, web, tmp_path):
    many = junit.MAX_CASES + 3
    xml = _pytest_junit(tmp_path, (
        "import pytest\n\n"
        "def test_huge_output():\n    assert False, 'x' * 20000\n\n"
        f"@pytest.mark.parametrize('n', range({many - 1}))\n"
        "def test_many(n):\n    assert n < 0\n"))
    created = attest(ci, "acme", "backend", trail, "junit", {"attestation_name": "unit-tests"},
                     tar_gz({"report.xml": xml})).json()
    stored = Attestation.objects.get(pk=created["id"]).results
    assert stored["totals"]["failures"] == many
    assert len(stored["failed_cases"]) == junit.MAX_CASES and stored["failed_cases_omitted"] == 3
    assert all(len(case["text"].encode()) <= junit.MAX_TEXT_BYTES for case in stored["failed_cases"])
    huge = next(case for case in stored["failed_cases"] if case["name"] == "test_huge_output")
    assert huge["text_truncated"] is True
    html = page(web, created["id"])
    cap = section(html, "junit-cap")
    assert f"first {junit.MAX_CASES} of {many} failing tests" in cap and "3 more" in cap
    assert "Output cut at 4.0" in html
    assert "Show more" in html  # the long output is folded behind a <details>


def test_junit_stored_before_details_still_shows_totals_with_a_note(org, ci, trail, web):
    flow = Flow.objects.get(org=org, name="backend")
    old = Attestation.objects.create(
        org=org, flow=flow, trail=Trail.objects.get(flow=flow, name="build-1"), name="unit-tests", type="junit",
        is_compliant=False, verification="verified", problems=["1 failed and 0 errored tests"],
        results={"totals": {"tests": 7, "failures": 1, "errors": 0, "skipped": 0}, "source": "files",
                 "suites": [{"name": "pytest", "file": "report.xml", "tests": 7, "failures": 1, "errors": 0,
                             "skipped": 0, "duration_ms": 10, "timestamp": ""}]})
    html = page(web, old.pk)
    assert "7</strong> tests · <strong>1</strong> failed" in html
    assert "stored before csm kept each test" in section(html, "junit-no-details")
    assert 'data-testid="junit-failures"' not in html


# --- SARIF -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ruff_sarif(tmp_path_factory) -> bytes:
    """SARIF written by ``ruff check --output-format sarif`` over a file with an unused import."""
    work = tmp_path_factory.mktemp("ruff")
    (work / "lint_me.py").write_text("import os\n")
    run = subprocess.run([str(VENV_BIN / "ruff"), "check", "--no-cache", "--isolated", "--output-format", "sarif",
                          str(work / "lint_me.py")], capture_output=True, check=False, cwd=work)
    assert run.stdout, run.stderr
    return run.stdout


def test_sarif_page_groups_bandit_findings_by_severity(ci, trail, web, bandit_sarif):
    created = attest(ci, "acme", "backend", trail, "sarif", {"attestation_name": "bandit"},
                     tar_gz({"out.sarif": bandit_sarif})).json()
    html = page(web, created["id"])
    high = section(html, "sarif-high")
    assert "B602" in high and "subprocess_popen_with_shell_equals_true" in high
    assert "insecure.py:5" in high and "shell=True" in high
    low = section(html, "sarif-low")
    assert "B404" in low and "insecure.py:1" in low and "B602" not in low
    assert html.index('data-testid="sarif-high"') < html.index('data-testid="sarif-low"')  # most severe first
    assert "Bandit" in section(html, "sarif-totals")


def test_sarif_page_shows_ruff_rule_description_and_level(ci, trail, web, ruff_sarif):
    created = attest(ci, "acme", "backend", trail, "sarif", {"attestation_name": "lint"},
                     tar_gz({"ruff.sarif": ruff_sarif})).json()
    high = section(page(web, created["id"]), "sarif-high")
    assert "F401" in high and "imported but unused" in high  # rule description and message
    assert "lint_me.py:1" in high and "error" in high  # location and SARIF level


def test_sarif_findings_are_bounded_keeping_the_most_severe(ci, trail, web, tmp_path):
    from evidence.parsers import sarif

    many = sarif.MAX_LISTED + 1
    (tmp_path / "many.py").write_text("import subprocess\n\n\ndef run(cmd):\n"
                                      + "".join("    subprocess.call(cmd, shell=True)\n" for _ in range(many)))
    out = tmp_path / "many.sarif"
    subprocess.run([str(VENV_BIN / "bandit"), "-q", "-f", "sarif", "-o", str(out), str(tmp_path / "many.py")],
                   capture_output=True, check=False)
    created = attest(ci, "acme", "backend", trail, "sarif", {"attestation_name": "bandit"},
                     tar_gz({"many.sarif": out.read_bytes()})).json()
    results = Attestation.objects.get(pk=created["id"]).results
    assert results["findings"]["high"] == many and results["findings"]["low"] == 1  # counted in full
    assert len(results["listed"]) == sarif.MAX_LISTED and results["listed_omitted"] == 2
    assert {item["severity"] for item in results["listed"]} == {"high"}  # the low one is what was dropped
    html = page(web, created["id"])
    assert f"Showing the {sarif.MAX_LISTED} most severe of {many + 1} findings" in section(html, "sarif-cap")
    assert 'data-testid="sarif-low"' not in html


# --- SBOM --------------------------------------------------------------------------------------------


def spdx(count: int) -> bytes:
    packages = [{"name": f"lib{n:03d}", "SPDXID": f"SPDXRef-{n}", "versionInfo": f"1.{n}.0",
                 "downloadLocation": "NOASSERTION", "licenseConcluded": "MIT" if n % 2 else "Apache-2.0",
                 "licenseDeclared": "NOASSERTION",
                 "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                   "referenceLocator": f"pkg:pypi/lib{n:03d}@1.{n}.0"}]} for n in range(count)]
    return json.dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app",
                       "packages": packages}).encode()


def test_sbom_page_lists_cyclonedx_components_with_search(ci, trail, web, cyclonedx_sbom):
    document = json.loads(cyclonedx_sbom)
    names = sorted(c["name"] for c in document["components"])
    assert "pip" in names
    created = attest(ci, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"},
                     tar_gz({"sbom.cdx.json": cyclonedx_sbom})).json()
    table = section(page(web, created["id"]), "sbom-components")
    for name in names:
        assert f"<td>{name}" in table
    pip = next(c for c in document["components"] if c["name"] == "pip")
    assert pip["purl"] in table
    licenses = [choice.get("license", {}).get("id") or choice.get("license", {}).get("name")
                or choice.get("expression") for choice in pip.get("licenses", [])]
    for license_ in filter(None, licenses):
        assert license_ in table
    searched = section(page(web, created["id"], q="pip"), "sbom-components")
    assert "<td>pip" in searched and all(f"<td>{n}" not in searched for n in names if "pip" not in n)
    assert "No component matches" in section(page(web, created["id"], q="no-such-component"), "sbom-components")


def test_sbom_components_are_paged_and_searchable_by_license(ci, trail, web):
    created = attest(ci, "acme", "backend", trail, "sbom", {"attestation_name": "sbom"},
                     tar_gz({"app.spdx.json": spdx(120)})).json()
    first = page(web, created["id"])
    assert first.count("<td>lib") == 50 and "<td>lib000" in first and "<td>lib050" not in first
    assert "120 components · page 1 of 3" in section(first, "sbom-pagination")
    last = page(web, created["id"], page=3)
    assert last.count("<td>lib") == 20 and "<td>lib119" in last
    mit = page(web, created["id"], q="MIT")
    assert "60 components matching" in mit and "<td>lib001" in mit and "<td>lib000" not in mit
    assert "Apache-2.0" not in section(mit, "sbom-components")


# --- pull requests, custom, generic, override --------------------------------------------------------

PR = {"url": "https://github.com/acme/backend/pull/42", "merge_commit": "d" * 40, "state": "MERGED",
      "author": "alice", "approvers": [{"username": "bob", "state": "APPROVED", "timestamp": 1764390000}],
      "title": "Add <b>rate limits</b>", "head_ref": "feature/limits"}


def test_pull_request_page(ci, trail, web):
    created = attest(ci, "acme", "backend", trail, "pull_request",
                     {"attestation_name": "pr", "git_provider": "github", "pull_requests": [PR]}).json()
    response = web.get(reverse("attestation-detail", args=["acme", "backend", "build-1", created["id"]]))
    raw = response.content.decode()
    assert "<b>rate limits</b>" not in raw and "&lt;b&gt;rate limits&lt;/b&gt;" in raw  # escaped
    table = section(unescape(raw), "pull-requests")
    assert 'href="https://github.com/acme/backend/pull/42"' in table and "#42" in table
    assert "alice" in table and "bob" in table and "MERGED" in table and "d" * 12 in table


def test_custom_attestation_shows_its_data_escaped_and_the_rule_result(ci, admin_api, trail, web):
    schema = {"type": "object", "properties": {"coverage": {"type": "number"}, "note": {"type": "string"}}}
    assert admin_api.post("/api/v2/orgs/acme/attestation-types", {
        "name": "coverage-report", "schema": schema, "rule": "coverage >= 80"}, format="json").status_code == 201
    created = attest(ci, "acme", "backend", trail, "custom", {
        "attestation_name": "coverage", "type_name": "coverage-report",
        "attestation_data": {"coverage": 71, "note": "<script>alert(1)</script>"},
        "user_data": {"pipeline": "<img src=x onerror=alert(1)>"}}).json()
    raw = web.get(reverse("attestation-detail", args=["acme", "backend", "build-1", created["id"]])).content.decode()
    assert "<script>alert(1)</script>" not in raw and "<img src=x" not in raw
    html = unescape(raw)
    data = section(html, "attestation-data")
    assert '"coverage": 71' in data and '"note": "<script>alert(1)</script>"' in data
    assert "coverage &gt;= 80" in raw and "not satisfied" in section(html, "custom-detail")
    assert '"pipeline": "<img src=x onerror=alert(1)>"' in section(html, "user-data")


def test_override_names_who_approved_it_and_why(ci, org, token_for, api, trail, web):
    approver = api(token=token_for(org, Role.ADMIN, name="release-manager"))
    target = attest(ci, "acme", "backend", trail, "generic",
                    {"attestation_name": "review", "is_compliant": False}).json()
    override = approver.post("/api/v2/attestations/acme/backend/trail/build-1/override", {
        "attestation_name": "review", "reason": "accepted by the CAB, ticket CAB-7", "new_compliance_status": True,
        "original_attestation_type": "generic"}, format="json")
    assert override.status_code == 201, override.content
    html = page(web, target["id"])
    assert "overridden: counts as compliant" in section(html, "overridden")
    overrides = section(html, "overrides")
    assert "release-manager (" in overrides and "accepted by the CAB, ticket CAB-7" in overrides
    assert "in effect" in overrides
    override_page = section(page(web, override.json()["id"]), "override-detail")
    assert "release-manager (" in override_page and "review #" in override_page


# --- isolation and downloads -------------------------------------------------------------------------


def test_another_orgs_attestation_is_a_404(ci, trail, web, other_org, token_for, api, client, pytest_junit_xml):
    mine = attest(ci, "acme", "backend", trail, "junit", {"attestation_name": "unit-tests"},
                  tar_gz({"report.xml": pytest_junit_xml})).json()
    globex = api(token=token_for(other_org, Role.MEMBER))
    make_flow(globex, org="globex")
    begin_trail(globex, org="globex")
    theirs = attest(globex, "globex", "backend", "build-1", "generic",
                    {"attestation_name": "secret-review", "is_compliant": True}).json()
    # their id under our org's path: not found, and nothing of theirs is shown
    response = web.get(reverse("attestation-detail", args=["acme", "backend", "build-1", theirs["id"]]))
    assert response.status_code == 404 and b"secret-review" not in response.content
    # our attestation under the wrong trail: not found
    assert web.get(reverse("attestation-detail", args=["acme", "backend", "other", mine["id"]])).status_code == 404
    # a member of the other org cannot open ours
    web.logout()
    web.force_login(other_org.memberships.get().user)
    assert web.get(reverse("attestation-detail", args=["acme", "backend", "build-1", mine["id"]])).status_code == 404


def test_evidence_files_are_listed_with_hash_and_downloaded_as_attachments(ci, trail, web, pytest_junit_xml):
    import hashlib

    html_file = b"<html><script>alert(document.cookie)</script></html>"
    created = attest(ci, "acme", "backend", trail, "junit", {"attestation_name": "unit-tests"},
                     tar_gz({"report.xml": pytest_junit_xml, "coverage/index.html": html_file})).json()
    files = section(page(web, created["id"]), "evidence-files")
    for name, data in (("report.xml", pytest_junit_xml), ("coverage/index.html", html_file)):
        digest = hashlib.sha256(data).hexdigest()
        assert name in files and digest in files and f"({len(data)} bytes)" in files
        url = reverse("evidence-download", args=["acme", digest])
        assert url in files
        response = web.get(url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["Content-Type"] == "application/octet-stream"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert b"".join(response.streaming_content) == data


def test_attestation_page_queries_do_not_grow_with_its_files_or_overrides(ci, org, token_for, api, trail, web,
                                                                          django_assert_max_num_queries):
    one = attest(ci, "acme", "backend", trail, "generic", {"attestation_name": "one", "is_compliant": False},
                 tar_gz({"a.txt": b"a"})).json()
    many = attest(ci, "acme", "backend", trail, "generic", {"attestation_name": "many", "is_compliant": False},
                  tar_gz({f"{n}.txt": str(n).encode() for n in range(8)})).json()
    approver = api(token=token_for(org, Role.ADMIN, name="release-manager"))
    for status in (True, False, True):
        assert approver.post("/api/v2/attestations/acme/backend/trail/build-1/override", {
            "attestation_name": "many", "reason": f"decided {status}", "new_compliance_status": status},
            format="json").status_code == 201
    page(web, one["id"])  # warm: the first request of a test also loads the session
    with django_assert_max_num_queries(1000) as queries:
        page(web, one["id"])
    baseline = len(queries)
    assert baseline > 0
    with django_assert_max_num_queries(baseline):
        html = page(web, many["id"])
    assert section(html, "evidence-files").count(".txt</a>") == 8
    assert section(html, "overrides").count("decided") == 3
