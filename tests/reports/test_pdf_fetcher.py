"""PDF rendering fetches nothing a user can name (issue 11): evidence text that reaches a report (an
artifact's file name and build URL, an override's reason, the reporter's label) holding URLs of a real
local server and ``file:`` paths is printed, never requested; and markup that got past escaping — every
way HTML, CSS and SVG can ask for a resource — is refused by the fetcher too, while the project's own
static files still load."""

import pytest
from weasyprint import HTML

from audit.context import AuditContext
from evidence import services as evidence
from reports.rendering import StaticOnlyFetcher, static_roots
from tests.reports.conftest import assert_contains, pdf_text

pytestmark = pytest.mark.django_db
FP = "c9" * 32


def test_hostile_evidence_text_in_an_artifact_report_is_printed_not_fetched(org, owner, generate,
                                                                              recording_server, settings, tmp_path):
    port, hits = recording_server
    settings.CSM_EVIDENCE_ROOT = tmp_path / "evidence"
    base = f"http://127.0.0.1:{port}"
    hostile = (f'<img src="{base}/img"><link rel=stylesheet href="{base}/css"><style>@import url({base}/import);'
               f'body{{background:url(file:///etc/passwd)}}</style><svg><image href="{base}/svg"/></svg>')
    ctx = AuditContext.system(f'ci <img src="{base}/actor">')
    flow, _ = evidence.upsert_flow(ctx, org, {"name": "backend", "description": hostile})
    evidence.report_artifact(ctx, org, flow, {"fingerprint": FP, "filename": hostile, "trail_name": "build-1",
                                              "build_url": f"{base}/build?x=<script>"})
    evidence.create_attestation(ctx, org, flow, "build-1", "generic",
                                {"attestation_name": "deploy-check", "artifact_fingerprint": FP, "is_compliant": False,
                                 "description": hostile})
    evidence.create_attestation(ctx, org, flow, "build-1", "override",
                                {"attestation_name": "deploy-check", "artifact_fingerprint": FP,
                                 "new_compliance_status": True, "reason": hostile}, can_override=True)
    report = generate(org, "artifact", user=owner, fingerprint=FP)
    assert report.status == "done", report.error
    assert hits == []
    text = pdf_text(report)
    assert_contains(text, f"{base}/build", f"{base}/img", "file:///etc/passwd")  # shown as text


def test_markup_that_escaped_escaping_still_fetches_nothing(recording_server, tmp_path):
    port, hits = recording_server
    base = f"http://127.0.0.1:{port}"
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    static = static_roots()[0]
    html = f"""<html><head>
      <link rel="stylesheet" href="{static.as_uri()}/csm/app.css">
      <link rel="stylesheet" href="{base}/link.css"><link rel="stylesheet" href="{secret.as_uri()}">
      <style>
        @import url({base}/import.css);
        @font-face {{ font-family: x; src: url({base}/font.woff); }}
        body {{ background: url(file:///etc/passwd); list-style-image: url({base}/bullet.png); }}
        p::after {{ content: url({base}/after.png); }}
      </style></head><body>
      <img src="{base}/img.png"><img src="file:///etc/passwd"><img src="../../settings.py">
      <img src="data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'><image href='{base}/in-data.png'/></svg>">
      <object data="{base}/object"></object><embed src="{base}/embed"><iframe src="{base}/frame"></iframe>
      <svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
        <image href="{base}/svg.png" width="5" height="5"/><image xlink:href="{base}/xlink.png"/>
        <use href="{base}/use.svg#x"/></svg>
      <p style="background-image: url({base}/inline.png)">text</p></body></html>"""
    fetcher = StaticOnlyFetcher()
    HTML(string=html, base_url=static.as_uri() + "/", url_fetcher=fetcher).render()
    assert hits == []
    refused = " ".join(fetcher.refused)
    for url in (f"{base}/link.css", f"{base}/import.css", f"{base}/img.png", "file:///etc/passwd", secret.as_uri()):
        assert url in refused
