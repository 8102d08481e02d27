"""kosli ``get attestation`` (by trail, by artifact, by id), ``attest jira`` and ``attest sonar`` against csm,
each request built as the CLI's ``internal/requests/requests.go`` builds it (``tests/kosli/cli.py``): the
attest commands send multipart ``data_json`` (the payload struct's JSON, Go field order, ``omitempty``
fields left out) plus an optional ``attachment_file`` (``cmd/kosli/attestation.go`` newAttestationForm);
``get attestation`` sends a GET and decodes the answer into ``[]Attestation`` or ``{"data": []Attestation}``
(``cmd/kosli/getAttestation.go`` printAttestationsAsTable)."""

import hashlib
import io
import tarfile

import pytest
from django.urls import reverse

from audit.choices import AuditAction
from audit.models import AuditEvent
from evidence.models import Attestation
from policies.facts import gather_facts
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow, report_artifact  # noqa: F401
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

COMMIT = "0fc1ba9876f91b215679f3649b8668085d820ab5"
FP = hashlib.sha256(b"differ:1.0").hexdigest()
# gitview.BasicCommitInfo as the CLI sends it (--commit): timestamp is an int64
COMMIT_INFO = {"sha1": COMMIT, "message": "PROJ-42 add the differ endpoint", "author": "Dev <dev@example.com>",
               "timestamp": 1733230000, "branch": "PROJ-42-differ",
               "url": f"https://github.com/cyber-dojo/differ/commit/{COMMIT}"}
# internal/jira JiraIssueInfo; issue_fields is go-jira's IssueFields, present with --jira-issue-fields
FOUND = {"issue_id": "PROJ-42", "issue_url": "https://kosli.atlassian.net/browse/PROJ-42", "issue_exists": True,
         "issue_fields": {"summary": "Differ endpoint", "issuetype": {"name": "Story"},
                          "status": {"name": "In Progress", "statusCategory": {"id": 4}},
                          "assignee": {"displayName": "Dev Eloper"}, "customfield_10016": 3.0}}
NOT_FOUND = {"issue_id": "NOTE-1", "issue_url": "https://kosli.atlassian.net/browse/NOTE-1", "issue_exists": False}
# internal/sonar SonarResults, values from the CLI's testdata (cmd/kosli/testdata/sonar/sonarcloud) and
# SonarQube's api/qualitygates/project_status (metricKey → metric, comparator → operator, actualValue → value)
SONAR_OK = {
    "serverUrl": "https://sonarcloud.io", "taskId": "AZrs5eywBfkZKeU0sde9", "status": "SUCCESS",
    "analysedAt": "2025-11-20T10:42:01+0000", "revision": COMMIT,
    "project": {"key": "cyber-dojo_differ", "name": "differ",
                "url": "https://sonarcloud.io/dashboard?id=cyber-dojo_differ"},
    "branch": {"name": "main", "type": "LONG"},
    "qualityGate": {"status": "OK", "conditions": [
        {"metric": "new_reliability_rating", "errorThreshold": "1", "operator": "GT", "value": "1", "status": "OK"},
        {"metric": "new_coverage", "errorThreshold": "80", "operator": "LT", "value": "91.2", "status": "OK"}]},
}
SONAR_ERROR = {**SONAR_OK, "qualityGate": {"status": "ERROR", "conditions": [
    {"metric": "new_coverage", "errorThreshold": "85", "operator": "LT", "value": "82.50562381034781",
     "status": "ERROR"},
    {"metric": "new_duplicated_lines_density", "errorThreshold": "3", "operator": "GT", "value": "0.0",
     "status": "OK"}]}}


@pytest.fixture
def token(org, token_for):
    return token_for(org, Role.MEMBER)


@pytest.fixture
def reporter(api, token):
    return api(token=token)


@pytest.fixture
def web(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def trail(reporter):
    make_flow(reporter, name="differ", template={
        "trail": [{"name": "jira-ticket", "type": "jira"}, {"name": "sonar-scan", "type": "sonar"}],
        "artifacts": [{"name": "differ-image", "attestations": [{"name": "unit-tests", "type": "junit"}]}]})
    begin_trail(reporter, flow="differ", commit=COMMIT)
    return "build-1"


def payload(name, **extra):
    """CommonAttestationPayload in Go field order, omitempty fields left out, then the command's own."""
    data = {}
    if "artifact_fingerprint" in extra:
        data["artifact_fingerprint"] = extra.pop("artifact_fingerprint")
    data["git_commit_info"] = COMMIT_INFO
    data["attestation_name"] = name
    data.update(extra)
    return data


def attest_as_cli(token, kind, data, attachment=None, trail="build-1", org="acme", flow="differ"):
    form = [("field", "data_json", data)]
    if attachment is not None:
        form.append(("file", "attachment_file", attachment))
    return cli(token, "POST", f"/api/v2/attestations/{org}/{flow}/trail/{trail}/{kind}", form=form)


def tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def statuses(token, flow="differ", trail="build-1") -> dict:
    answer = cli(token, "GET", f"/api/v2/trails/acme/{flow}/{trail}")
    assert answer.status_code == 200
    return answer.json()


def assert_cli_attestation(entry: dict):
    """The ``Attestation`` struct of getAttestation.go, field by field with its Go type."""
    assert isinstance(entry["attestation_name"], str) and isinstance(entry["attestation_type"], str)
    assert isinstance(entry["is_compliant"], bool)
    assert isinstance(entry["created_at"], float) and entry["created_at"] > 1_600_000_000
    assert isinstance(entry["html_url"], str) and entry["html_url"].startswith("http://testserver/o/acme/")
    assert isinstance(entry["attestation_id"], str) and entry["attestation_id"].isdecimal()
    assert entry["artifact_fingerprint"] is None or isinstance(entry["artifact_fingerprint"], str)  # null → ""
    if "git_commit_info" in entry:
        info = entry["git_commit_info"]
        for key in ("sha1", "author", "message", "branch", "url"):
            assert isinstance(info[key], str), key
        assert isinstance(info["timestamp"], (int, float)) and not isinstance(info["timestamp"], bool)


# --- attest jira -----------------------------------------------------------------------------------------


def test_attest_jira_every_issue_found_is_compliant_and_shown(token, web, trail, evidence_root):  # noqa: F811
    """cmd/kosli/attestJira.go attestJiraOptions.run: POST /api/v2/attestations/{org}/{flow}/trail/{trail}/jira,
    multipart ``data_json`` = JiraAttestationPayload (CommonAttestationPayload + ``jira_results``: issue_id,
    issue_url, issue_exists, issue_fields). The CLI reads nothing from the answer but its status (200/201).
    Stored as a ``jira`` attestation, compliant as every referenced issue exists; the trail's
    ``compliance_status.attestations_statuses`` lists it with the template's type; the page links each issue;
    the audit event names the type."""
    answer = attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[FOUND]))
    assert answer.status_code == 201, answer.content
    stored = Attestation.objects.get(name="jira-ticket")
    assert stored.type == "jira" and stored.is_compliant is True
    assert stored.results["issues"][0] == {"key": "PROJ-42", "url": "https://kosli.atlassian.net/browse/PROJ-42",
                                           "exists": True, "summary": "Differ endpoint", "status": "In Progress",
                                           "type": "Story", "assignee": "Dev Eloper", "priority": ""}
    assert stored.summary["jira_results"][0]["issue_fields"]["customfield_10016"] == 3.0  # evidence as sent
    event = AuditEvent.objects.get(action=AuditAction.ATTESTATION_CREATED, target_id=str(stored.pk))
    assert event.after["type"] == "jira" and event.after["is_compliant"] is True

    entry = {e["attestation_name"]: e for e in statuses(token)["compliance_status"]["attestations_statuses"]}
    assert entry["jira-ticket"]["attestation_type"] == "jira" and entry["jira-ticket"]["is_compliant"] is True
    assert entry["jira-ticket"]["attestation_id"] == str(stored.pk)
    assert entry["sonar-scan"]["status"] == "MISSING" and entry["sonar-scan"]["attestation_type"] == "sonar"

    page = web.get(reverse("attestation-detail", args=["acme", "differ", "build-1", stored.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="https://kosli.atlassian.net/browse/PROJ-42"' in html and "Differ endpoint" in html


def test_attest_jira_missing_or_no_issue_is_non_compliant(token, web, trail):
    """attestJira.go: "its compliance status depends on referencing existing Jira issues"; ``--assert`` fails
    the pipeline when no reference is found or one is not in Jira. The attestation is still recorded (the CLI
    reports it in all cases) and says which issue is missing."""
    answer = attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[FOUND, NOT_FOUND]))
    assert answer.status_code == 201, answer.content
    stored = Attestation.objects.get(name="jira-ticket")
    assert stored.is_compliant is False and stored.problems == ["Jira issue not found: NOTE-1"]
    page = web.get(reverse("attestation-detail", args=["acme", "differ", "build-1", stored.pk])).content.decode()
    assert "NOTE-1" in page and "not found" in page

    answer = attest_as_cli(token, "jira", payload("jira-none", jira_results=[]))
    assert answer.status_code == 201, answer.content
    stored = Attestation.objects.get(name="jira-none")
    assert stored.is_compliant is False
    assert stored.problems == ["no Jira issue is referenced in the commit message or branch name"]
    trail_answer = statuses(token)
    assert trail_answer["compliance_state"] == "NON-COMPLIANT"


def test_attest_jira_with_attachment_keeps_the_file(token, trail, evidence_root):  # noqa: F811
    """attestation.go newAttestationForm: ``--attachments`` adds an ``attachment_file`` part (a tar.gz the
    CLI builds); csm keeps each file as evidence of the jira attestation."""
    archive = tar_gz({"jira-notes.md": b"PROJ-42 reviewed with the product owner\n"})
    answer = attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[FOUND]),
                           attachment=("/tmp/evidence.tgz", archive))
    assert answer.status_code == 201, answer.content
    assert [e["name"] for e in answer.json()["evidence"]] == ["jira-notes.md"]


def test_attest_jira_bad_input_names_the_field(token, trail):
    """A payload the CLI would never build (an issue key that is not a key, no ``jira_results``) is a 400
    whose ``message`` (what the CLI prints) names the field."""
    bad = {**FOUND, "issue_id": "<script>"}
    answer = attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[bad]))
    assert answer.status_code == 400
    assert "jira_results[0].issue_id" in cli_error(answer)
    assert answer.json()["error"]["fields"] == {"data_json": [cli_error(answer)]}
    answer = attest_as_cli(token, "jira", payload("jira-ticket"))
    assert answer.status_code == 400 and "jira_results" in cli_error(answer)
    answer = attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[{**FOUND, "issue_exists": "yes"}]))
    assert answer.status_code == 400 and "issue_exists" in cli_error(answer)
    assert not Attestation.objects.exists()


def test_attest_needs_report_permission_and_own_org(org, other_org, token_for, trail):
    """A reader may read but not report (403); another org's flow is a 404 — its name is not confirmed."""
    reader = token_for(org, Role.READER)
    answer = attest_as_cli(reader, "sonar", payload("sonar-scan", sonar_results=SONAR_OK))
    assert answer.status_code == 403 and cli_error(answer)
    stranger = token_for(other_org, Role.ADMIN)
    answer = attest_as_cli(stranger, "jira", payload("jira-ticket", jira_results=[FOUND]), org="acme")
    assert answer.status_code == 404
    assert not Attestation.objects.exists()


# --- attest sonar ----------------------------------------------------------------------------------------


def test_attest_sonar_passed_gate_is_compliant_and_shown(token, web, trail):
    """cmd/kosli/attestSonar.go attestSonarOptions.run: POST .../trail/{trail}/sonar, multipart ``data_json``
    = SonarAttestationPayload (CommonAttestationPayload + ``sonar_results``, internal/sonar/sonar.go
    SonarResults). Compliant when the quality gate status is OK; the page shows the gate, the conditions and
    links the Sonar project's dashboard."""
    answer = attest_as_cli(token, "sonar", payload("sonar-scan", sonar_results=SONAR_OK))
    assert answer.status_code == 201, answer.content
    stored = Attestation.objects.get(name="sonar-scan")
    assert stored.type == "sonar" and stored.is_compliant is True and stored.problems == []
    assert stored.results["quality_gate"]["conditions"][1] == {
        "metric": "new_coverage", "operator": "LT", "error_threshold": "80", "value": "91.2", "status": "OK"}
    assert AuditEvent.objects.filter(action=AuditAction.ATTESTATION_CREATED, target_id=str(stored.pk)).exists()

    entry = {e["attestation_name"]: e for e in statuses(token)["compliance_status"]["attestations_statuses"]}
    assert entry["sonar-scan"]["attestation_type"] == "sonar" and entry["sonar-scan"]["compliant"] is True

    html = web.get(reverse("attestation-detail", args=["acme", "differ", "build-1", stored.pk])).content.decode()
    assert 'href="https://sonarcloud.io/dashboard?id=cyber-dojo_differ"' in html
    assert "new_reliability_rating" in html and "passed" in html


def test_attest_sonar_failed_gate_is_non_compliant(token, trail):
    """SonarQube's ``projectStatus.status`` ERROR: the gate failed, the attestation is non-compliant and says
    which conditions failed; a scan without a quality gate result is non-compliant too."""
    answer = attest_as_cli(token, "sonar", payload("sonar-scan", sonar_results=SONAR_ERROR))
    assert answer.status_code == 201, answer.content
    stored = Attestation.objects.get(name="sonar-scan")
    assert stored.is_compliant is False
    assert stored.problems == ["SonarQube quality gate status ERROR for project cyber-dojo_differ: new_coverage"]
    no_gate = {key: value for key, value in SONAR_OK.items() if key != "qualityGate"}  # omitempty when nil
    answer = attest_as_cli(token, "sonar", payload("sonar-nogate", sonar_results=no_gate))
    assert answer.status_code == 201
    assert Attestation.objects.get(name="sonar-nogate").is_compliant is False


def test_attest_sonar_bad_input_names_the_field(token, trail):
    answer = attest_as_cli(token, "sonar", payload("sonar-scan"))
    assert answer.status_code == 400 and "sonar_results" in cli_error(answer)
    broken = {**SONAR_OK, "project": {"name": "differ"}}
    answer = attest_as_cli(token, "sonar", payload("sonar-scan", sonar_results=broken))
    assert answer.status_code == 400 and "sonar_results.project.key" in cli_error(answer)
    broken = {**SONAR_OK, "qualityGate": {"status": "OK", "conditions": "all good"}}
    answer = attest_as_cli(token, "sonar", payload("sonar-scan", sonar_results=broken))
    assert answer.status_code == 400 and "conditions" in cli_error(answer)


def test_template_requiring_jira_and_sonar_is_compliant_once_both_pass(token, trail):
    """Flow templates name the types ``jira`` and ``sonar`` (kosli's YAML ``type: jira``); the trail is
    compliant once both are reported and pass (and its artifact's, none here, are)."""
    assert statuses(token)["compliance_state"] != "COMPLIANT"
    assert attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[FOUND])).status_code == 201
    assert attest_as_cli(token, "sonar", payload("sonar-scan", sonar_results=SONAR_OK)).status_code == 201
    answer = statuses(token)
    entries = {e["attestation_name"]: e for e in answer["compliance_status"]["attestations_statuses"]}
    assert {name: (e["attestation_type"], e["status"]) for name, e in entries.items()} == {
        "jira-ticket": ("jira", "COMPLETE"), "sonar-scan": ("sonar", "COMPLETE")}
    assert not any("jira-ticket" in r or "sonar-scan" in r for r in answer["compliance"]["reasons"])


# --- get attestation -------------------------------------------------------------------------------------


def test_get_attestation_by_trail_lists_every_one_of_that_name(token, trail):
    """cmd/kosli/getAttestation.go getAttestationOptions.run with ``--trail``: GET
    /api/v2/attestations/{org}/{flow}/trail/{trail}/{name}; the answer decodes into ``[]Attestation``
    (attestation_name, attestation_type, is_compliant bool, artifact_fingerprint, created_at float64,
    git_commit_info {sha1, author, message, branch, url, timestamp float64}, html_url). Every attestation of
    that name is listed, newest first; none is ``[]`` with 200 (the CLI prints "No attestations found.")."""
    assert attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[NOT_FOUND])).status_code == 201
    assert attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[FOUND])).status_code == 201
    answer = cli(token, "GET", "/api/v2/attestations/acme/differ/trail/build-1/jira-ticket")
    assert answer.status_code == 200
    body = answer.json()
    assert isinstance(body, list) and len(body) == 2
    for entry in body:
        assert_cli_attestation(entry)
        assert entry["attestation_name"] == "jira-ticket" and entry["attestation_type"] == "jira"
        assert entry["git_commit_info"]["sha1"] == COMMIT and entry["git_commit_info"]["timestamp"] == 1733230000
        assert entry["artifact_fingerprint"] is None  # a trail attestation: the CLI prints no fingerprint
    assert [e["is_compliant"] for e in body] == [True, False]
    newest = Attestation.objects.filter(name="jira-ticket").order_by("-id").first()
    assert body[0]["attestation_id"] == str(newest.pk)
    assert body[0]["html_url"] == f"http://testserver/o/acme/flows/differ/trails/build-1/attestations/{newest.pk}/"

    answer = cli(token, "GET", "/api/v2/attestations/acme/differ/trail/build-1/non-existent-attestation")
    assert answer.status_code == 200 and answer.json() == []
    answer = cli(token, "GET", "/api/v2/attestations/acme/differ/trail/no-such-trail/jira-ticket")
    assert answer.status_code == 404 and cli_error(answer)


def test_get_attestation_by_artifact_fingerprint(token, reporter, trail):
    """getAttestation.go with ``--fingerprint``: GET /api/v2/attestations/{org}/{flow}/artifact/{fingerprint}/
    {name}; the attestations of that name about the artifact, each with ``artifact_fingerprint``. A unique
    prefix names the artifact as for ``get artifact``; an unknown one is a 404 the CLI prints."""
    assert report_artifact(reporter, FP, flow="differ", name="differ-image", commit=COMMIT).status_code == 201
    assert attest_as_cli(token, "jira", payload("jira-ticket", artifact_fingerprint=FP,
                                                jira_results=[FOUND])).status_code == 201
    assert attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[NOT_FOUND])).status_code == 201
    for fingerprint in (FP, FP[:8]):
        answer = cli(token, "GET", f"/api/v2/attestations/acme/differ/artifact/{fingerprint}/jira-ticket")
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert len(body) == 1  # not the trail's own attestation of the same name
        assert_cli_attestation(body[0])
        assert body[0]["artifact_fingerprint"] == FP and body[0]["is_compliant"] is True
    answer = cli(token, "GET", f"/api/v2/attestations/acme/differ/artifact/{FP}/unit-tests")
    assert answer.status_code == 200 and answer.json() == []
    answer = cli(token, "GET", "/api/v2/attestations/acme/differ/artifact/abcdef12/jira-ticket")
    assert answer.status_code == 404 and "abcdef12" in cli_error(answer)


def test_get_attestation_by_id(token, trail):
    """getAttestation.go with ``--attestation-id``: GET /api/v2/attestations/{org}?attestation_id={id}; the
    answer decodes as ``{"data": []Attestation}``. An unknown id is ``{"data": []}`` (the CLI's own tests:
    "No attestations found."); without the parameter, a 400 naming it."""
    assert attest_as_cli(token, "sonar", payload("sonar-scan", sonar_results=SONAR_ERROR)).status_code == 201
    stored = Attestation.objects.get()
    answer = cli(token, "GET", "/api/v2/attestations/acme", query={"attestation_id": str(stored.pk)})
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert len(data) == 1
    assert_cli_attestation(data[0])
    assert data[0]["attestation_type"] == "sonar" and data[0]["is_compliant"] is False
    assert data[0]["results"]["quality_gate"]["status"] == "ERROR"
    for unknown in ("non-existent-attestation-id", str(stored.pk + 1000), "9" * 40):
        answer = cli(token, "GET", "/api/v2/attestations/acme", query={"attestation_id": unknown})
        assert answer.status_code == 200 and answer.json() == {"data": []}
    answer = cli(token, "GET", "/api/v2/attestations/acme")
    assert answer.status_code == 400 and answer.json()["error"]["fields"] == {"attestation_id": ["required"]}


def test_evaluate_enriches_trail_attestations_by_id(token, trail):
    """cmd/kosli/evaluateHelpers.go: ``kosli evaluate trail`` collects every string ``attestation_id`` of the
    trail's ``attestations_statuses`` (internal/evaluate/transform.go CollectAttestationIDs) and GETs
    ``/api/v2/attestations/{org}?attestation_id=`` for each, merging ``data[0]`` into the policy input."""
    assert attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[FOUND])).status_code == 201
    assert attest_as_cli(token, "sonar", payload("sonar-scan", sonar_results=SONAR_OK)).status_code == 201
    trail_answer = statuses(token)
    ids = [e["attestation_id"] for e in trail_answer["compliance_status"]["attestations_statuses"]]
    assert all(isinstance(i, str) for i in ids)
    event_ids = {e["attestation_id"] for e in trail_answer["events"] if "attestation_type" in e}
    assert event_ids == set(ids)
    for entry in trail_answer["compliance_status"]["attestations_statuses"]:
        answer = cli(token, "GET", "/api/v2/attestations/acme", query={"attestation_id": entry["attestation_id"]})
        detail = answer.json()["data"][0]
        assert detail["attestation_name"] == entry["attestation_name"]
        assert detail["attestation_type"] == entry["attestation_type"]


def test_get_attestation_permissions_and_isolation(org, other_org, token_for, token, trail):
    """Reading takes ``evidence.view``: a reader may, a snapshotter (agents) gets 403. Another org's
    attestation is not found: its org's path is a 404, and its id asked in one's own org is ``{"data": []}``."""
    assert attest_as_cli(token, "jira", payload("jira-ticket", jira_results=[FOUND])).status_code == 201
    stored = Attestation.objects.get()
    reader = token_for(org, Role.READER)
    answer = cli(reader, "GET", "/api/v2/attestations/acme/differ/trail/build-1/jira-ticket")
    assert answer.status_code == 200 and len(answer.json()) == 1
    snapshotter = token_for(org, Role.SNAPSHOTTER)
    for path, query in (("/api/v2/attestations/acme/differ/trail/build-1/jira-ticket", None),
                        ("/api/v2/attestations/acme", {"attestation_id": str(stored.pk)}),
                        (f"/api/v2/attestations/acme/differ/artifact/{FP}/jira-ticket", None)):
        answer = cli(snapshotter, "GET", path, query=query)
        assert answer.status_code == 403 and cli_error(answer)
    stranger = token_for(other_org, Role.ADMIN)
    for path, query in (("/api/v2/attestations/acme/differ/trail/build-1/jira-ticket", None),
                        ("/api/v2/attestations/acme", {"attestation_id": str(stored.pk)}),
                        (f"/api/v2/attestations/acme/differ/artifact/{FP}/jira-ticket", None)):
        assert cli(stranger, "GET", path, query=query).status_code == 404
    answer = cli(stranger, "GET", "/api/v2/attestations/globex", query={"attestation_id": str(stored.pk)})
    assert answer.status_code == 200 and answer.json() == {"data": []}


def test_environment_policies_see_jira_and_sonar_as_builtin_types(org, token, reporter, trail):
    """An environment policy names the built-in types (``type: jira`` / ``type: sonar``,
    policies/parsing.py BUILTIN_ATTESTATION_TYPES); the facts it is judged on carry those types for an
    artifact's jira and sonar attestations — not ``custom:jira``, which no policy would match."""
    assert report_artifact(reporter, FP, flow="differ", name="differ-image", commit=COMMIT).status_code == 201
    assert attest_as_cli(token, "jira", payload("jira-ticket", artifact_fingerprint=FP,
                                                jira_results=[FOUND])).status_code == 201
    assert attest_as_cli(token, "sonar", payload("sonar-scan", artifact_fingerprint=FP,
                                                 sonar_results=SONAR_ERROR)).status_code == 201
    facts = gather_facts(org, [{"name": "differ", "fingerprint": FP}])[("differ", FP)]
    assert sorted((a["name"], a["type"], a["compliant"]) for a in facts.attestations) == [
        ("jira-ticket", "jira", True), ("sonar-scan", "sonar", False)]
