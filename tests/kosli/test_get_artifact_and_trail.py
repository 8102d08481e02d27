"""kosli ``get artifact``, ``get trail`` and ``evaluate trail(s)`` against csm, each request sent as the
CLI's ``internal/requests/requests.go`` (newHTTPRequest) builds a GET: no body, ``Content-Type:
application/json; charset=utf-8``, ``User-Agent: Kosli/<version>``, ``Authorization: Bearer <token>``. The
answers are checked field by field against what the CLI type-asserts when it prints them (it decodes into
``map[string]interface{}``: a missing key asserted ``.(string)`` panics, a string where it asserts
``.(float64)`` panics)."""

import hashlib
import json
from datetime import datetime

import pytest
from django.test import Client

from audit.context import AuditContext
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.choices import Role
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow, report_artifact  # noqa: F401

pytestmark = pytest.mark.django_db

FP = hashlib.sha256(b"backend:1.0").hexdigest()
COMMIT = "0fc1ba9876f91b215679f3649b8668085d820ab5"
TEMPLATE = {"trail": [{"name": "jira-ticket", "type": "generic"}, {"name": "pull-request", "type": "generic"}],
            "artifacts": [{"name": "backend-image", "attestations": [{"name": "unit-tests", "type": "junit"},
                                                                    {"name": "scan", "type": "generic"}]}]}


@pytest.fixture
def token(org, token_for):
    return token_for(org, Role.MEMBER)


@pytest.fixture
def reporter(api, token):
    return api(token=token)


@pytest.fixture
def kosli(token):
    """``kosliClient.Do`` for a GET: returns (status, decoded JSON body)."""
    client = Client()

    def get(path):
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_USER_AGENT="Kosli/v2.11.0",
                              CONTENT_TYPE="application/json; charset=utf-8")
        return response.status_code, response.json()

    return get


def snapshot(org, env, fingerprints, capture):
    ctx = AuditContext.system("test")
    raw = json.dumps({"artifacts": [{"digests": {f"app-{i}": f}, "creationTimestamp": 1_700_000_000}
                                    for i, f in enumerate(fingerprints)]}).encode()
    with capture(execute=False):
        report, _ = accept_report(ctx, env, env.type, raw)
    ingest_report(report.pk)


def fingerprint_with_prefix(prefix: str, seed: int) -> str:
    return prefix + hashlib.sha256(str(seed).encode()).hexdigest()[len(prefix):]


def test_get_artifact_by_unique_prefix(reporter, kosli):
    """cmd/kosli/getArtifact.go run + cli_utils.go handleArtifactExpression: ``kosli get artifact
    backend@184c7`` sends GET /api/v2/artifacts/{org}/{flow}/fingerprint/{prefix}; kosli takes any unique
    prefix of 5-64 hex digits. An ambiguous one must be a 400 naming the candidates (a 409 would be retried
    by the CLI as a lock conflict), an unknown one a 404, fewer than 5 digits a 400."""
    make_flow(reporter, template=TEMPLATE)
    begin_trail(reporter, commit=COMMIT)
    one, two = fingerprint_with_prefix("184c79", 1), fingerprint_with_prefix("184c7a", 2)
    for fingerprint in (one, two, FP):
        assert report_artifact(reporter, fingerprint, commit=COMMIT).status_code == 201

    status, body = kosli(f"/api/v2/artifacts/acme/backend/fingerprint/{one[:6]}")
    assert status == 200 and body["fingerprint"] == one
    status, body = kosli(f"/api/v2/artifacts/acme/backend/fingerprint/{FP[:5]}")
    assert status == 200 and body["fingerprint"] == FP
    status, body = kosli(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}")
    assert status == 200 and body["fingerprint"] == FP

    status, body = kosli("/api/v2/artifacts/acme/backend/fingerprint/184c7")
    assert status == 400
    assert "ambiguous" in body["error"]["message"] and one in body["error"]["message"]
    assert two in body["error"]["message"]
    status, body = kosli("/api/v2/artifacts/acme/backend/fingerprint/eeeee")
    assert status == 404 and "eeeee" in body["error"]["message"]
    status, _ = kosli("/api/v2/artifacts/acme/backend/fingerprint/184c")
    assert status == 400


def test_get_artifact_answer_has_what_the_cli_prints(reporter, kosli, api, org, django_capture_on_commit_callbacks):
    """cmd/kosli/getArtifact.go printArtifactsJsonAsTable: asserts ``filename``, ``flow_name``,
    ``fingerprint``, ``git_commit``, ``commit_url``, ``build_url``, ``html_url``, ``state`` as strings;
    ``trail_name`` / ``template_reference_name`` as strings when not null; ``created_at`` and each
    ``history[].timestamp`` through formattedTimestamp (a number: an ISO string fails ParseFloat);
    ``running`` and ``exited`` as lists of ``{environment_name: string, snapshot_index: number}``.
    csm's own clients keep ``running`` as every run and the ISO time as ``created_at_iso``."""
    make_flow(reporter, template=TEMPLATE)
    begin_trail(reporter, commit=COMMIT)
    assert report_artifact(reporter, FP, commit=COMMIT).status_code == 201
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "scan", "artifact_fingerprint": FP, "is_compliant": False}).status_code == 201
    env, _ = create_or_update_environment(AuditContext.system("test"), org, "staging", "server")
    snapshot(org, env, [FP], django_capture_on_commit_callbacks)
    snapshot(org, env, ["e" * 64], django_capture_on_commit_callbacks)
    prod, _ = create_or_update_environment(AuditContext.system("test"), org, "prod", "server")
    snapshot(org, prod, [FP], django_capture_on_commit_callbacks)

    status, artifact = kosli(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}")
    assert status == 200
    assert artifact["filename"] == "backend:1.0" and artifact["flow_name"] == "backend"
    assert artifact["trail_name"] == "build-1" and artifact["template_reference_name"] == "backend-image"
    assert artifact["fingerprint"] == FP and artifact["git_commit"] == COMMIT
    assert artifact["commit_url"] == f"https://git.example.com/c/{COMMIT}"
    assert artifact["build_url"] == "https://ci.example.com/build/1"
    assert artifact["html_url"] == f"http://testserver/o/acme/artifacts/{FP}/"
    assert artifact["state"] == "NON-COMPLIANT"
    assert isinstance(artifact["created_at"], float)
    assert datetime.fromisoformat(artifact["created_at_iso"]).timestamp() == pytest.approx(artifact["created_at"])
    assert [(r["environment_name"], r["snapshot_index"]) for r in artifact["running"]] == [("prod", 1)]
    assert [(r["environment_name"], r["snapshot_index"]) for r in artifact["exited"]] == [("staging", 2)]
    events = [event["event"] for event in artifact["history"]]
    assert events[0] == "backend-image reported in flow backend trail build-1"
    assert "scan attestation (generic) reported" in events
    assert {"Started running in staging#1", "Exited from staging#2", "Started running in prod#1"} <= set(events)
    assert all(isinstance(event["timestamp"], float) for event in artifact["history"])
    timestamps = [event["timestamp"] for event in artifact["history"]]
    assert timestamps == sorted(timestamps)

    mine = reporter.get(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}").json()  # csm's own client
    assert [(r["environment"], r["running"]) for r in mine["running"]] == [("staging", False), ("prod", True)]


def test_get_trail_answer_has_what_the_cli_prints(reporter, kosli):
    """cmd/kosli/getTrail.go printTrailAsTable / printTrailAsMarkdown / writeAttestationStatuses:
    ``compliance_state`` (COMPLIANT / NON-COMPLIANT / INCOMPLETE), ``last_modified_at`` through
    formattedTimestamp (a number), ``git_commit_info`` with ``sha1``, ``author``, ``message`` strings and
    ``timestamp`` a float64 — or null, since any object is asserted field by field — and
    ``compliance_status.attestations_statuses`` (``attestation_name``, ``status``, ``is_compliant``,
    ``unexpected``) at the trail and, per artifact name, in ``artifacts_statuses`` with a ``status``."""
    make_flow(reporter, template=TEMPLATE)
    begin_trail(reporter, commit=COMMIT)
    begin_trail(reporter, name="no-commit")
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "jira-ticket", "is_compliant": True}).status_code == 201
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "extra-check", "is_compliant": True}).status_code == 201
    assert report_artifact(reporter, FP, commit=COMMIT).status_code == 201

    status, trail = kosli("/api/v2/trails/acme/backend/build-1")
    assert status == 200
    assert trail["name"] == "build-1" and trail["description"] == ""
    assert trail["compliance_state"] == "INCOMPLETE" and trail["is_compliant"] is False
    assert isinstance(trail["last_modified_at"], float)
    info = trail["git_commit_info"]
    assert info["sha1"] == COMMIT and info["author"] == "dev <dev@example.com>" and info["message"] == "a change"
    assert isinstance(info["timestamp"], int | float)
    status_ = trail["compliance_status"]
    assert status_["status"] == "INCOMPLETE" and status_["is_compliant"] is False
    by_name = {a["attestation_name"]: a for a in status_["attestations_statuses"]}
    assert set(by_name) == {"jira-ticket", "pull-request", "extra-check"}
    assert by_name["jira-ticket"]["status"] == "COMPLETE" and by_name["jira-ticket"]["is_compliant"] is True
    assert by_name["jira-ticket"]["unexpected"] is False and by_name["jira-ticket"]["attestation_type"] == "generic"
    assert by_name["pull-request"]["status"] == "MISSING" and by_name["pull-request"]["is_compliant"] is None
    assert by_name["extra-check"]["unexpected"] is True
    image = status_["artifacts_statuses"]["backend-image"]
    assert image["status"] == "INCOMPLETE" and image["fingerprint"] == FP
    assert {a["attestation_name"]: a["status"] for a in image["attestations_statuses"]} == {
        "unit-tests": "MISSING", "scan": "MISSING"}
    assert {a["attestation_type"] for a in image["attestations_statuses"]} == {"junit", "generic"}

    status, bare = kosli("/api/v2/trails/acme/backend/no-commit")
    assert status == 200 and bare["git_commit_info"] is None
    assert reporter.get("/api/v2/trails/acme/backend/no-commit").json()["git_commit_info"] == {}


def test_evaluate_trail_input_has_kosli_rego_fields(reporter, kosli):
    """cmd/kosli/evaluateHelpers.go fetchAndEnrichTrail + internal/evaluate/transform.go: the CLI GETs
    the trail, turns each ``attestations_statuses`` list into a map keyed by ``attestation_name`` and gives
    it to the policy as ``input.trail``. kosli's own policies (internal/evaluate/opa_contract_test.go,
    testdata/policies/realistic-compliance.rego) read ``.compliant``, ``.html_url`` and ``.created_at``
    (RFC 3339, ``time.parse_rfc3339_ns``). ``attestation_id`` is a string, which the CLI sends back to
    ``GET /api/v2/attestations/{org}?attestation_id=`` to enrich the input (tests/kosli/test_attestations.py)."""
    make_flow(reporter, template=TEMPLATE)
    begin_trail(reporter, commit=COMMIT)
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "pull-request", "is_compliant": True}).status_code == 201
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "jira-ticket", "is_compliant": False}).status_code == 201

    status, trail = kosli("/api/v2/trails/acme/backend/build-1")
    assert status == 200
    assert trail["compliance_state"] == "NON-COMPLIANT"
    statuses = {a["attestation_name"]: a for a in trail["compliance_status"]["attestations_statuses"]}
    assert statuses["pull-request"]["compliant"] is True and statuses["jira-ticket"]["compliant"] is False
    for entry in statuses.values():
        assert isinstance(entry["attestation_id"], str) and entry["attestation_id"] == str(entry["csm_id"])
        assert entry["html_url"].startswith("http://testserver/o/acme/flows/backend/trails/build-1/attestations/")
        assert entry["created_at"].endswith("Z")
        assert datetime.fromisoformat(entry["created_at"]).tzinfo is not None
    page = reporter.get(statuses["jira-ticket"]["html_url"].removeprefix("http://testserver"))
    assert page.status_code in (200, 302)


def test_get_trail_events_have_what_the_cli_prints(reporter, kosli, org, django_capture_on_commit_callbacks):
    """cmd/kosli/getTrail.go eventFields: every event's ``timestamp`` asserted float64 and ``type`` asserted
    string; per type it reads ``attestation_type`` + ``template_reference_name`` (trail attestation),
    ``target_artifact`` too (artifact attestation), ``artifact_name`` (artifact created),
    ``environment_name`` + ``snapshot_index`` (started / stopped running), and ``is_compliant``,
    ``git_commit_info.sha1`` for the compliance and commit columns."""
    make_flow(reporter, template=TEMPLATE)
    begin_trail(reporter, commit=COMMIT)
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "jira-ticket", "is_compliant": True}).status_code == 201
    assert report_artifact(reporter, FP, commit=COMMIT).status_code == 201
    assert attest(reporter, "acme", "backend", "build-1", "generic",
                  {"attestation_name": "scan", "artifact_fingerprint": FP, "is_compliant": False}).status_code == 201
    env, _ = create_or_update_environment(AuditContext.system("test"), org, "prod", "server")
    snapshot(org, env, [FP], django_capture_on_commit_callbacks)
    snapshot(org, env, ["e" * 64], django_capture_on_commit_callbacks)

    status, trail = kosli("/api/v2/trails/acme/backend/build-1")
    assert status == 200
    events = trail["events"]
    assert all(isinstance(event["timestamp"], float) and isinstance(event["type"], str) for event in events)
    assert [event["timestamp"] for event in events] == sorted(event["timestamp"] for event in events)
    by_type = {event["type"]: event for event in events}
    assert set(by_type) == {"trail_reported", "trail_attestation_reported", "artifact_creation_reported",
                            "artifact_attestation_reported", "artifact_started_running", "artifact_stopped_running"}
    assert by_type["trail_reported"]["git_commit_info"]["sha1"] == COMMIT
    trail_attestation = by_type["trail_attestation_reported"]
    assert (trail_attestation["attestation_type"], trail_attestation["template_reference_name"],
            trail_attestation["is_compliant"]) == ("generic", "jira-ticket", True)
    on_artifact = by_type["artifact_attestation_reported"]
    assert (on_artifact["target_artifact"], on_artifact["template_reference_name"],
            on_artifact["is_compliant"]) == ("backend-image", "scan", False)
    assert by_type["artifact_creation_reported"]["artifact_name"] == "backend:1.0"
    assert by_type["artifact_creation_reported"]["template_reference_name"] == "backend-image"
    assert (by_type["artifact_started_running"]["environment_name"],
            by_type["artifact_started_running"]["snapshot_index"]) == ("prod", 1)
    assert (by_type["artifact_stopped_running"]["environment_name"],
            by_type["artifact_stopped_running"]["snapshot_index"]) == ("prod", 2)


def test_get_artifact_in_one_trail(reporter, kosli):
    """cmd/kosli/getArtifact.go run: ``kosli get artifact backend@FP --trail build-2`` appends
    ``?trail=build-2`` (url.Values.Encode) and expects that trail's report of the artifact; a trail that
    did not report it is a 404."""
    make_flow(reporter, template=TEMPLATE)
    begin_trail(reporter, commit=COMMIT)
    begin_trail(reporter, name="build-2", commit=COMMIT)
    assert report_artifact(reporter, FP, commit=COMMIT).status_code == 201
    assert report_artifact(reporter, FP, trail="build-2", commit=COMMIT).status_code == 201
    status, artifact = kosli(f"/api/v2/artifacts/acme/backend/fingerprint/{FP[:8]}?trail=build-1")
    assert status == 200 and artifact["trail_name"] == "build-1" and artifact["fingerprint"] == FP
    status, artifact = kosli(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}?trail=build-2")
    assert status == 200 and artifact["trail_name"] == "build-2"
    status, body = kosli(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}?trail=other")
    assert status == 404 and "other" in body["error"]["message"]
