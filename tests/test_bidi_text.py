"""Bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE & co.) in user- and agent-supplied text are shown as
visible code points on every web page and in PDF reports, so a name cannot read reversed or flip the
rest of its line."""

import json

import pytest
from django.urls import reverse

from audit.context import AuditContext
from csm.lib.text import BIDI_CONTROLS, reveal_bidi_controls
from evidence import services as evidence
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tests.reports.conftest import generate, pdf_text  # noqa: F401 - generate is a fixture
from tests.reports.test_kinds import report_range

pytestmark = pytest.mark.django_db

CTX = AuditContext.system("deploy-agent")
RLO = "\u202e"
FP = "a7" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_every_bidi_control_becomes_a_visible_code_point():
    text = "a" + BIDI_CONTROLS + "b שלום"
    shown = reveal_bidi_controls(text)
    assert not any(c in shown for c in BIDI_CONTROLS)
    assert shown.startswith("a[U+200E][U+200F][U+061C][U+202A]") and shown.endswith("[U+2069]b שלום")


@pytest.fixture
def hostile(org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        env, _ = create_or_update_environment(CTX, org, "edge", "server", description=f"{RLO}evil env")
        flow, _ = evidence.upsert_flow(CTX, org, {"name": "backend", "description": f"{RLO}evil flow"})
        evidence.report_artifact(CTX, org, flow, {"fingerprint": FP, "filename": f"{RLO}gnp.exe",
                                                  "trail_name": "release-1", "git_commit": COMMIT})
        body = {"artifacts": [{"digests": {f"{RLO}gnp.exe": FP}, "creationTimestamp": 1_700_000_000}]}
        report, _ = accept_report(CTX, env, "server", json.dumps(body).encode())
    ingest_report(report.pk)
    return env


@pytest.mark.parametrize("page", ["environment-detail", "flow-detail", "trail-detail", "artifact-detail",
                                  "audit-log"])
def test_pages_show_bidi_controls_visibly(client, owner, hostile, page):
    args = {"environment-detail": ["acme", "edge"], "flow-detail": ["acme", "backend"],
            "trail-detail": ["acme", "backend", "release-1"], "artifact-detail": ["acme", FP],
            "audit-log": ["acme"]}[page]
    client.force_login(owner)
    response = client.get(reverse(page, args=args))
    assert response.status_code == 200
    body = response.content.decode()
    assert RLO not in body
    assert "[U+202E]" in body
    assert int(response["Content-Length"]) == len(response.content)


def test_pdf_summary_and_figures_show_bidi_controls_visibly(org, owner, hostile, generate):  # noqa: F811
    report = generate(org, "artifact", user=owner, fingerprint=FP, **report_range())
    assert report.status == "done", report.error
    text = pdf_text(report)
    summary = text[text.index("Summary"):]
    assert RLO not in text
    assert summary.split("[U+202E]")[1].startswith("gnp.exe (")  # the summary line, not only the ledgers
