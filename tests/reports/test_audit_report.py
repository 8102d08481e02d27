"""Audit-trail report on realistic data built through the tenants services: the PDF opens, its text
holds the actors, actions, figures and integrity hashes, the JSON export matches its printed hash, the
stored output is append-only and committed to the journal; hostile strings fetch nothing."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, transaction
from django.utils import timezone

from audit.context import AuditContext
from audit.services import record_denied_access, record_event, summarize_denied_access
from journal.models import JournalHead, JournalLeaf
from journal.verify import verify_journal
from reports.models import ReportOutput
from tenants.choices import Role
from tenants.models import Membership
from tenants.services import change_role, create_api_token, create_service_account, revoke_api_token
from tests.reports.conftest import assert_contains, pdf_pages, pdf_text, save_png

pytestmark = pytest.mark.django_db

RANGE = {"from": "2000-01-01", "to": "2100-01-01"}


@pytest.fixture
def busy_org(org, owner, member_of):
    """Acme with a role change, a CI service account whose token was revoked, and a reader."""
    ctx = AuditContext.for_user(owner)
    alice = member_of(org, Role.MEMBER, "alice@example.com")
    change_role(ctx, Membership.objects.get(org=org, user=alice), Role.ADMIN, actor_role=Role.OWNER)
    account = create_service_account(ctx, org, "ci-deployer", Role.SNAPSHOTTER)
    token, _ = create_api_token(ctx, org, "pipeline", service_account=account)
    revoke_api_token(ctx, token)
    member_of(org, Role.READER, "auditor@example.com")
    return org


def test_audit_report_lists_who_did_what_with_integrity_hashes(busy_org, owner, generate):
    report = generate(busy_org, "audit", user=owner, **RANGE)
    assert report.status == "done", report.error
    output = report.output
    assert bytes(output.pdf)[:5] == b"%PDF-"
    assert 3 <= pdf_pages(report) <= 12 and output.page_count == pdf_pages(report)
    text = pdf_text(report)
    assert_contains(text, "Audit-trail report", "Acme Corp", "owner@example.com", "alice@example.com", "ci-deployer",
                     "Member role changed", "role: member → admin", "Token revoked", "Service account created",
                     "Page 1 of", "Control mapping", "CC8.1", "A.8.32", "6.5.1", "10.3.4", "11.5.2", "Art. 9(4)(e)",
                     "Members at generation time", "auditor@example.com")
    # Integrity: the data hash, the journal position, every cited leaf hash
    data = json.loads(bytes(output.data_json))
    assert hashlib.sha256(bytes(output.data_json)).hexdigest() == output.data_sha256
    assert output.data_sha256 in text
    assert output.journal_hash in text and f"#{output.journal_index}" in text
    cited = data["integrity"]["cited"]
    assert len(cited) == data["sections"][0]["row_count"] >= 7
    for _kind, index, leaf_hash, _label in cited:
        assert leaf_hash in text
        assert JournalLeaf.objects.get(org=busy_org, index=index).leaf_hash == leaf_hash
    figures = dict(data["summary"]["figures"])
    assert figures["Audit events"] == len(cited)
    assert figures["Tokens and service accounts"] == 3  # created account, created token, revoked token


def test_report_output_is_append_only_and_in_the_journal(busy_org, owner, generate):
    report = generate(busy_org, "audit", user=owner, **RANGE)
    output = report.output
    leaf = output.leaf
    assert leaf.kind == "report" and json.loads(leaf.payload)["data"]["pdf_sha256"] == output.pdf_sha256
    assert JournalHead.objects.get(org=busy_org).last_index == leaf.index
    assert verify_journal(busy_org) is None
    with pytest.raises((InternalError, ProgrammingError, IntegrityError)), transaction.atomic():
        ReportOutput.objects.filter(pk=output.pk).update(pdf_sha256="0" * 64)
    with pytest.raises((InternalError, ProgrammingError, IntegrityError)), transaction.atomic():
        ReportOutput.objects.filter(pk=output.pk).delete()
    # the request itself is audited
    assert busy_org.audit_events.filter(action="audit_report.requested", target_id=str(report.pk)).exists()


def test_generating_twice_changes_nothing(busy_org, owner, generate):
    from reports.tasks import generate_report

    report = generate(busy_org, "audit", user=owner, **RANGE)
    head = JournalHead.objects.get(org=busy_org).last_index
    assert generate_report.run(str(report.pk), {}) is None
    assert JournalHead.objects.get(org=busy_org).last_index == head


def test_task_exits_cleanly_when_the_row_is_gone():
    from reports.tasks import generate_report

    assert generate_report.run("00000000-0000-0000-0000-000000000000", {}) is None


def test_empty_range_is_a_clear_no_changes_report(org, owner, generate):
    report = generate(org, "audit", user=owner, **{"from": "2001-01-01", "to": "2001-02-01"})
    assert report.status == "done"
    text = pdf_text(report)
    assert "No changes: no audit events in this range." in text
    assert "No audit events in this range" in text
    assert 3 <= pdf_pages(report) <= 6


def test_hostile_strings_are_escaped_and_fetch_nothing(org, owner, generate, recording_server):
    port, hits = recording_server
    img = f'<img src="http://127.0.0.1:{port}/x">'
    css = f'<style>@import url(http://127.0.0.1:{port}/css);</style>'
    long_text = "A" * 5000
    rtl_emoji = "\u202eevil.exe‮ שלום 🚀🔥"
    ctx = AuditContext(actor_type="user", actor_label=f"{img}</table></td>{rtl_emoji}", user_id=owner.pk)
    record_event(ctx, org, "environment.created", ("environment", 1, f"{img}</table>{css}"),
                 after={"name": img, "description": long_text, "link": f"file:///etc/passwd {img}"})
    record_event(ctx, org, "environment.updated", ("environment", 1, long_text), after={"note": rtl_emoji})
    report = generate(org, "audit", user=owner, **RANGE)
    assert report.status == "done", report.error
    assert hits == []
    text = pdf_text(report)
    assert_contains(text, f"127.0.0.1:{port}/x")  # printed as text, not fetched
    assert "🚀" in text or "שלום" in text
    assert "Integrity" in text  # "</table>" did not cut the document short
    save_png(report, "hostile-audit", pages=3)


def test_audit_report_png_for_people(busy_org, owner, generate):
    report = generate(busy_org, "audit", user=owner, **RANGE)
    pages = save_png(report, "audit-trail", pages=4)
    assert len(pages) >= 3 and all(page.stat().st_size > 5000 for page in pages)


def test_url_fetcher_refuses_everything_but_static_files(settings, tmp_path):
    from reports.rendering import StaticOnlyFetcher, static_roots

    fetcher = StaticOnlyFetcher()
    css = static_roots()[0] / "csm" / "app.css"
    assert fetcher.fetch(css.as_uri()).read().startswith(b":root")
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    for url in ("http://127.0.0.1:9/x", "https://example.com/a.png", secret.as_uri(), "file:///etc/passwd",
                css.as_uri().replace("/csm/app.css", "/../../settings.py"), "data:text/plain,hello", "ftp://x/y"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 7


def test_report_timestamps_are_in_range(org, owner, generate):
    report = generate(org, "audit", user=owner, **RANGE)
    assert report.started_at <= report.finished_at <= timezone.now()


def test_denied_access_counts_every_refused_attempt_of_an_aggregated_window(org, owner, generate, settings):
    """Refusals are stored as one event plus a summary per window (docs/operations.md); the report's
    "Denied access" figure still counts every attempt, not the two rows."""
    stranger = AuditContext(actor_type="user", actor_label="mallory@example.com", user_id=999_999, ip="203.0.113.9")
    for _ in range(5):
        record_denied_access(stranger, org, "audit.view", "/api/v2/orgs/acme/audit-events")
    later = timezone.now() + timedelta(seconds=settings.CSM_ACCESS_DENIED_WINDOW_SECONDS + 2)
    assert summarize_denied_access(now=later) == 1
    report = generate(org, "audit", user=owner, **RANGE)
    figures = dict(json.loads(bytes(report.output.data_json))["summary"]["figures"])
    assert figures["Denied access"] == 5
