"""Compliance of trails and artifacts against the flow template, binding trail attestations to artifacts
that arrive later, provenance for snapshots, commit search, journal leaves and append-only rows."""

import hashlib

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.models import AuditEvent
from evidence import selectors
from evidence.models import Artifact, Attestation
from journal.choices import LeafKind
from journal.models import JournalLeaf
from journal.verify import verify_journal
from snapshots import hooks
from tests.evidence.conftest import attest, begin_trail, make_flow, report_artifact

pytestmark = pytest.mark.django_db

TEMPLATE = {"trail": [{"name": "jira-ticket", "type": "generic"}],
            "artifacts": [{"name": "backend-image", "attestations": [{"name": "unit-tests", "type": "generic"},
                                                                    {"name": "scan", "type": "generic"}]}]}
FP = hashlib.sha256(b"backend:1.0").hexdigest()
COMMIT = "a" * 40


@pytest.fixture
def trail(reporter):
    make_flow(reporter, template=TEMPLATE)
    begin_trail(reporter, commit=COMMIT)
    return "build-1"


def test_artifact_compliance_missing_then_complete(reporter, trail, org):
    assert report_artifact(reporter, FP).status_code == 201
    compliance = selectors.artifact_compliance(org, FP)
    assert compliance["provenance"] is True and compliance["compliant"] is False
    assert compliance["reasons"] == ["backend: missing attestation unit-tests", "backend: missing attestation scan"]
    for name in ("unit-tests", "scan"):
        attest(reporter, "acme", "backend", trail, "generic", {"attestation_name": name, "artifact_fingerprint": FP})
    assert selectors.artifact_compliance(org, FP)["compliant"] is True
    trail_state = reporter.get("/api/v2/trails/acme/backend/build-1").json()["compliance"]
    assert trail_state["reasons"] == ["missing attestation jira-ticket"]


def test_trail_without_the_templates_artifact(reporter, trail):
    attest(reporter, "acme", "backend", trail, "generic", {"attestation_name": "jira-ticket"})
    compliance = reporter.get("/api/v2/trails/acme/backend/build-1").json()["compliance"]
    assert compliance["reasons"] == ["missing artifact backend-image"]


def test_trail_attestation_made_before_the_artifact_is_bound_when_it_arrives(reporter, trail, org):
    # kosli attest generic --name backend-image.unit-tests --commit <sha> before the artifact exists
    data = {"attestation_name": "unit-tests", "target_artifacts": ["backend-image"],
            "git_commit_info": {"sha1": COMMIT, "message": "m", "author": "a", "timestamp": 1, "branch": "main"}}
    early = attest(reporter, "acme", "backend", trail, "generic", data).json()
    assert early["bound"] is False
    by_fingerprint = attest(reporter, "acme", "backend", trail, "generic",
                            {"attestation_name": "scan", "artifact_fingerprint": FP}).json()
    assert by_fingerprint["bound"] is False
    other_commit = attest(reporter, "acme", "backend", trail, "generic",
                          {**data, "attestation_name": "other",
                           "git_commit_info": {**data["git_commit_info"], "sha1": "b" * 40}}).json()
    assert report_artifact(reporter, FP, commit=COMMIT).status_code == 201
    artifact = Artifact.objects.get(fingerprint=FP)
    assert Attestation.objects.get(pk=early["id"]).artifact == artifact
    assert Attestation.objects.get(pk=by_fingerprint["id"]).artifact == artifact
    assert Attestation.objects.get(pk=other_commit["id"]).artifact is None
    assert selectors.artifact_compliance(org, FP)["compliant"] is True
    event = AuditEvent.objects.get(action="artifact.reported")
    assert sorted(event.after["bound_attestations"]) == sorted([early["id"], by_fingerprint["id"]])


def test_target_artifact_needs_a_fingerprint_or_a_commit(reporter, trail):
    response = attest(reporter, "acme", "backend", trail, "generic",
                      {"attestation_name": "unit-tests", "target_artifacts": ["backend-image"]})
    assert response.status_code == 400
    assert "requires at least one of: artifact_fingerprint or git_commit_info." in response.json()["error"]["message"]


def test_one_fingerprint_reported_by_two_flows(reporter, trail, org):
    report_artifact(reporter, FP)
    make_flow(reporter, name="release", template={"artifacts": [{"name": "*", "attestations": ["approval"]}]})
    begin_trail(reporter, flow="release", name="r1")
    assert report_artifact(reporter, FP, flow="release", trail="r1").status_code == 201
    assert report_artifact(reporter, FP, flow="release", trail="r1").status_code == 200  # idempotent
    provenance = selectors.provenance_for(org, {FP, "f" * 64})
    assert provenance[FP]["flows"] == ["backend", "release"]
    assert provenance[FP]["provenance"] is True and provenance[FP]["artifact_compliant"] is False
    assert "release: missing attestation approval" in provenance[FP]["compliance_reasons"]
    assert provenance["f" * 64]["provenance"] is False
    detail = reporter.get(f"/api/v2/artifacts/acme/release/fingerprint/{FP}").json()
    assert detail["flow"] == "release" and detail["compliance"]["compliant"] is False
    assert reporter.get(f"/api/v2/artifacts/acme/backend/fingerprint/{'e' * 64}").status_code == 404
    assert reporter.get("/api/v2/artifacts/acme/backend/fingerprint/NOTHEX").status_code == 400


def test_snapshots_learn_provenance_and_search_matches_commits(reporter, trail, org):
    report_artifact(reporter, FP, commit="abcdef1234" + "0" * 30)
    enriched = hooks.enrich(org, {FP, "d" * 64})
    assert enriched[FP]["flow"] == "backend" and enriched[FP]["provenance"] is True
    assert enriched[FP]["commit_url"].endswith("abcdef1234" + "0" * 30)
    assert enriched["d" * 64]["provenance"] is False
    matches = hooks.extra_search_matches(org, "abcdef12")
    assert [(m["kind"], m["fingerprint"]) for m in matches] == [("git_commit", FP)]
    assert hooks.extra_search_matches(org, "zz") == []


def test_every_record_appends_a_leaf_and_the_journal_verifies(reporter, trail, org):
    report_artifact(reporter, FP)
    attest(reporter, "acme", "backend", trail, "generic",
           {"attestation_name": "unit-tests", "artifact_fingerprint": FP})
    kinds = list(JournalLeaf.objects.filter(org=org).values_list("kind", flat=True))
    assert LeafKind.ARTIFACT in kinds and LeafKind.ATTESTATION in kinds
    assert Artifact.objects.get().leaf.kind == LeafKind.ARTIFACT
    assert verify_journal(org) is None


def test_attestations_and_artifacts_are_append_only(reporter, trail):
    report_artifact(reporter, FP)
    attest(reporter, "acme", "backend", trail, "generic",
           {"attestation_name": "unit-tests", "artifact_fingerprint": FP})
    for statement in ("UPDATE evidence_attestation SET is_compliant = NOT is_compliant",
                      "DELETE FROM evidence_attestation", "UPDATE evidence_artifact SET build_url = 'x'"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(statement)


def test_verify_journal_detects_a_row_altered_behind_its_back(reporter, trail, org):
    attest(reporter, "acme", "backend", trail, "generic", {"attestation_name": "jira-ticket", "is_compliant": False})
    with connection.cursor() as cursor:  # an operator bypassing the trigger
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE evidence_attestation SET is_compliant = true")
        cursor.execute("SET session_replication_role = origin")
    problem = verify_journal(org)
    assert problem is not None and "attestation" in problem.message and "altered" in problem.message


def test_artifact_shows_where_it_runs_now_and_ran(reporter, trail, org, django_capture_on_commit_callbacks):
    import json

    from audit.context import AuditContext
    from snapshots.services.environments import create_or_update_environment
    from snapshots.services.ingest import ingest_report
    from snapshots.services.reports import accept_report

    report_artifact(reporter, FP)
    ctx = AuditContext.system("test")
    env, _ = create_or_update_environment(ctx, org, "prod", "server")

    def snapshot(*fingerprints):
        raw = json.dumps({"artifacts": [{"digests": {f"app-{i}": f}, "creationTimestamp": 1_700_000_000}
                                        for i, f in enumerate(fingerprints)]}).encode()
        with django_capture_on_commit_callbacks(execute=False):
            report, _ = accept_report(ctx, env, env.type, raw)
        ingest_report(report.pk)

    snapshot(FP)
    running = reporter.get(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}").json()["running"]
    assert [(r["environment"], r["to_index"]) for r in running] == [("prod", None)]
    snapshot("e" * 64)
    running = reporter.get(f"/api/v2/artifacts/acme/backend/fingerprint/{FP}").json()["running"]
    assert [(r["environment"], r["from_index"], r["to_index"]) for r in running] == [("prod", 1, 2)]


def test_reported_urls_must_be_http(reporter, trail):
    response = reporter.post("/api/v2/artifacts/acme/backend", {
        "fingerprint": FP, "build_url": "javascript:alert(1)", "trail_name": "build-1"}, format="json")
    assert response.status_code == 400
    assert "build_url" in response.json()["error"]["fields"]
    response = attest(reporter, "acme", "backend", trail, "generic",
                      {"attestation_name": "x", "origin_url": "javascript:alert(1)"})
    assert response.status_code == 400
    assert "origin_url" in response.json()["error"]["fields"]


def test_a_fingerprint_with_a_trailing_newline_is_refused(reporter, trail):
    # "^[0-9a-f]{64}$" with re.match accepted it: '$' also matches before a final newline.
    before = Artifact.objects.count()
    response = reporter.post("/api/v2/artifacts/acme/backend", {
        "fingerprint": FP + "\n", "filename": "app.tar", "trail_name": "build-1"}, format="json")
    assert response.status_code == 400
    assert "fingerprint" in response.json()["error"]["fields"]
    assert Artifact.objects.count() == before
