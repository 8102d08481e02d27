"""Environment, artifact and org reports on realistic data built through the snapshot, evidence and
policy services: an environment that ran a compliant service, then an artifact nobody built (non-
compliant), then was remediated."""

import datetime
import json

import pytest
from django.utils import timezone

from audit.context import AuditContext
from evidence import services as evidence
from policies import services as policies
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tests.reports.conftest import assert_contains, pdf_pages, pdf_text, save_png

pytestmark = pytest.mark.django_db

CTX = AuditContext.system("deploy-agent")
WEB = "a1" * 32
ROGUE = "b2" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PROVENANCE_POLICY = ("_schema: https://kosli.com/schemas/policy/environment/v1\n"
                     "artifacts:\n  provenance:\n    required: true\n")


def report_range():
    today = timezone.now().date()
    return {"from": (today - datetime.timedelta(days=7)).isoformat(),
            "to": (today + datetime.timedelta(days=1)).isoformat()}


def ingest(env, artifacts: dict, capture):
    body = {"artifacts": [{"digests": {name: fingerprint}, "creationTimestamp": 1_700_000_000}
                          for name, fingerprint in artifacts.items()]}
    with capture(execute=False):
        report, _ = accept_report(CTX, env, env.type, json.dumps(body).encode())
    return ingest_report(report.pk).snapshot


@pytest.fixture
def world(org, django_capture_on_commit_callbacks, settings, tmp_path):
    settings.CSM_EVIDENCE_ROOT = tmp_path / "evidence"
    settings.STORAGES = {**settings.STORAGES, "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "ev")}}}
    capture = django_capture_on_commit_callbacks
    with capture(execute=False):
        env, _ = create_or_update_environment(CTX, org, "production", "server")
        flow, _ = evidence.upsert_flow(CTX, org, {"name": "backend", "description": "API service"})
        evidence.report_artifact(CTX, org, flow, {"fingerprint": WEB, "filename": "web-api", "trail_name": "release-42",
                                                  "git_commit": COMMIT, "build_url": "https://ci.example.com/b/42"})
        evidence.create_attestation(CTX, org, flow, "release-42", "generic",
                                    {"attestation_name": "code-review", "artifact_fingerprint": WEB,
                                     "is_compliant": True})
        policies.save_policy(CTX, org, "needs-provenance", PROVENANCE_POLICY)
        policies.attach_policies(CTX, org, env, ["needs-provenance"])
    ingest(env, {"web-api": WEB}, capture)
    ingest(env, {"web-api": WEB, "rogue-miner": ROGUE}, capture)
    ingest(env, {"web-api": WEB}, capture)
    return env


def test_environment_report(world, org, owner, generate):
    report = generate(org, "environment", user=owner, environment="production", **report_range())
    assert report.status == "done", report.error
    text = pdf_text(report)
    assert_contains(text, "Environment change report", "production", "web-api", "rogue-miner", WEB, ROGUE,
                     "deploy-agent", "UNAUTHORIZED", "backend / release-42", COMMIT[:12], "Non-compliant periods",
                     "Snapshots by compliance", "Artifact changes per week", "Provenance and evidence")
    data = json.loads(bytes(report.output.data_json))
    figures = dict(data["summary"]["figures"])
    assert figures["Snapshots"] == 3
    assert figures["Artifacts started"] == 2 and figures["Artifacts exited"] == 1
    assert figures["Unauthorized artifacts started"] == 1
    assert figures["Non-compliant periods"] == 1
    assert figures["Compliant snapshots"] == "66%"
    snapshot_leaves = [c for c in data["integrity"]["cited"] if c[0] == "snapshot"]
    assert len(snapshot_leaves) == 3
    assert_contains(text, *[c[2] for c in snapshot_leaves])
    assert 4 <= pdf_pages(report) <= 12
    save_png(report, "environment", pages=4)


def test_artifact_report(world, org, owner, generate):
    report = generate(org, "artifact", user=owner, fingerprint=WEB)
    assert report.status == "done", report.error
    text = pdf_text(report)
    assert_contains(text, "Artifact report", WEB, "backend", "release-42", COMMIT[:12], "code-review", "production",
                     "running", "Where it ran and when", "https://ci.example.com/b/42")
    data = json.loads(bytes(report.output.data_json))
    kinds = {c[0] for c in data["integrity"]["cited"]}
    assert {"artifact", "attestation", "snapshot"} <= kinds
    assert 3 <= pdf_pages(report) <= 8
    save_png(report, "artifact", pages=3)


def test_artifact_report_for_an_unknown_fingerprint_says_so(org, owner, generate):
    report = generate(org, "artifact", user=owner, fingerprint="c3" * 32)
    assert "No record: fingerprint" in pdf_text(report)


def test_org_summary(world, org, owner, generate):
    report = generate(org, "org", user=owner, **report_range())
    assert report.status == "done", report.error
    text = pdf_text(report)
    assert_contains(text, "Org compliance summary", "production", "Mean time to remediate", "rogue-miner", ROGUE,
                     "Unauthorized artifacts", "Snapshots by compliance per week", "Agent-silent gaps")
    data = json.loads(bytes(report.output.data_json))
    figures = dict(data["summary"]["figures"])
    assert figures["Non-compliant periods"] == 1 and figures["Still non-compliant"] == 0
    assert figures["Unauthorized artifacts"] == 1
    assert figures["Compliant snapshots"] == "66% of 3 with a policy"
    assert figures["Snapshots by compliance"] == "Compliant 66% · Non-compliant 33% · Unknown (no policy) 0%"
    assert figures["Mean time to remediate"] != "n/a"
    assert 3 <= pdf_pages(report) <= 8
    save_png(report, "org-summary", pages=3)


def test_empty_environment_range_is_a_no_changes_report(world, org, owner, generate):
    report = generate(org, "environment", user=owner, environment="production", **{"from": "2001-01-01",
                                                                                   "to": "2001-02-01"})
    text = pdf_text(report)
    assert "No changes: environment production recorded no snapshot" in text
    assert "No changes: no artifact started, exited or scaled in this range." in text


def test_hostile_artifact_names_fetch_nothing(org, owner, generate, recording_server,
                                              django_capture_on_commit_callbacks):
    port, hits = recording_server
    names = {f'<img src="http://127.0.0.1:{port}/x">': "d4" * 32,
             f"</table></td><link rel=stylesheet href=http://127.0.0.1:{port}/s.css>": "e5" * 32,
             "x" * 5000: "f6" * 32,
             "\u202egnp.exe مرحبا 🚀": "a7" * 32}
    with django_capture_on_commit_callbacks(execute=False):
        env, _ = create_or_update_environment(CTX, org, "edge", "server")
    ingest(env, names, django_capture_on_commit_callbacks)
    report = generate(org, "environment", user=owner, environment="edge", **report_range())
    assert report.status == "done", report.error
    assert hits == []
    text = pdf_text(report)
    assert_contains(text, f"127.0.0.1:{port}/x", "Integrity", "مرحبا")  # printed as text, never fetched
    # a right-to-left override cannot reorder the rest of its line: it is printed as a code point
    assert "[U+202E]" in text and "detroper wolf oN" not in text
    save_png(report, "hostile-environment", pages=4)


def test_a_report_whose_environment_was_deleted_fails_with_a_reason(org, owner,
                                                                   django_capture_on_commit_callbacks):
    from reports.services import request_report
    from reports.tasks import generate_report
    from snapshots.models import Environment

    with django_capture_on_commit_callbacks(execute=False):
        env, _ = create_or_update_environment(CTX, org, "temporary", "server")
    report = request_report(AuditContext.for_user(owner), org, "environment",
                            {"environment": "temporary", **report_range()}, role="owner")
    Environment.objects.filter(pk=env.pk).delete()  # removed by an admin before the worker ran
    generate_report.run(str(report.pk), {})
    report.refresh_from_db()
    assert report.status == "failed" and "DoesNotExist" in report.error and report.finished_at is not None
    assert report.output_or_none is None


def test_reports_count_unauthorized_as_the_app_does(world, org, owner, generate, django_capture_on_commit_callbacks):
    """The PDFs use policies.standing's authorization: an allowlisted artifact without provenance is
    authorized (listed as such, not counted), and a relaxed environment counts none."""
    from snapshots.services.environments import set_environment_authorization

    with django_capture_on_commit_callbacks(execute=False):
        policies.add_allowlist_entry(CTX, org, world, ROGUE, "rogue-miner", "benchmark run, ticket SEC-1")
    report = generate(org, "environment", user=owner, environment="production", **report_range())
    assert report.status == "done", report.error
    assert_contains(pdf_text(report), "Authorized (allowlisted)")
    figures = dict(json.loads(bytes(report.output.data_json))["summary"]["figures"])
    assert figures["Unauthorized artifacts started"] == 0
    org_figures = dict(json.loads(bytes(generate(org, "org", user=owner, **report_range()).output.data_json))
                       ["summary"]["figures"])
    assert org_figures["Unauthorized artifacts"] == 0

    with django_capture_on_commit_callbacks(execute=False):
        entry = policies.active_allowlist(world)[ROGUE]
        policies.remove_allowlist_entry(CTX, org, entry)
        set_environment_authorization(CTX, world, False, "sandbox for load tests")
    report = generate(org, "environment", user=owner, environment="production", **report_range())
    assert_contains(pdf_text(report), "Not required (relaxed)")
    assert dict(json.loads(bytes(report.output.data_json))["summary"]["figures"])["Unauthorized artifacts started"] == 0
