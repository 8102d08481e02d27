"""Audit gaps closed: tokens revoked by removing a member (or deactivating a service account) are each
audited; evidence and audit-package downloads are audited; a flood of refused attempts makes a handful
of rows (first refusal + one summary per window), not one row per request."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.context import AuditContext
from audit.models import AuditEvent
from audit.services import summarize_denied_access
from tenants import services
from tenants.choices import Role
from tenants.models import ApiToken, Membership, ServiceAccount
from tests.evidence.conftest import attest, begin_trail, evidence_root, make_flow, reporter  # noqa: F401

pytestmark = pytest.mark.django_db


def test_removing_a_member_audits_each_personal_token_it_revokes(org, owner, member_of):
    leaver = member_of(org, Role.MEMBER)
    ctx = AuditContext.for_user(leaver)
    tokens = [services.create_api_token(ctx, org, f"t{n}", user=leaver)[0] for n in range(2)]
    already = services.create_api_token(ctx, org, "old", user=leaver)[0]
    services.revoke_api_token(ctx, already)
    membership = Membership.objects.get(org=org, user=leaver)
    services.remove_member(AuditContext.for_user(owner), membership, actor_role=Role.OWNER)
    events = AuditEvent.objects.filter(org=org, action="token.revoked", actor_user_id=owner.pk)
    assert sorted(e.target_id for e in events) == sorted(str(t.pk) for t in tokens)
    assert {e.after["reason"] for e in events} == {"member removed"}
    assert not ApiToken.objects.filter(user=leaver, revoked_at__isnull=True).exists()


def test_deactivating_a_service_account_audits_each_token_it_revokes(org, owner):
    ctx = AuditContext.for_user(owner)
    account = services.create_service_account(ctx, org, "ci", Role.SNAPSHOTTER)
    token, _ = services.create_api_token(ctx, org, "t", service_account=account)
    services.deactivate_service_account(ctx, ServiceAccount.objects.get(pk=account.pk))
    event = AuditEvent.objects.get(org=org, action="token.revoked")
    assert event.target_id == str(token.pk) and event.after["reason"] == "service account deactivated"


def _evidence(reporter):  # noqa: F811 - the fixture, passed in
    make_flow(reporter)
    begin_trail(reporter)
    body = attest(reporter, "acme", "backend", "build-1", "generic", {"attestation_name": "notes"},
                  b"release notes\n", "notes.txt").json()
    return body["evidence"][0]["sha256"], body["id"]


def test_evidence_downloads_are_audited_on_the_api_and_the_web(reporter, org, owner, client):  # noqa: F811
    sha, _ = _evidence(reporter)
    assert reporter.get(f"/api/v2/evidence/acme/{sha}/download").status_code == 200
    client.force_login(owner)
    assert client.get(reverse("evidence-download", args=["acme", sha])).status_code == 200
    events = AuditEvent.objects.filter(org=org, action="evidence.downloaded").order_by("seq")
    assert [(e.after["sha256"], e.after["via"]) for e in events] == [(sha, "api"), (sha, "web")]
    assert events[1].actor_user_id == owner.pk


def test_audit_package_downloads_are_audited(reporter, org):  # noqa: F811
    _, attestation_id = _evidence(reporter)
    assert reporter.get("/api/v2/trails/acme/backend/build-1/audit-package").status_code == 200
    assert reporter.get(f"/api/v2/attestations/acme/id/{attestation_id}/audit-package").status_code == 200
    events = AuditEvent.objects.filter(org=org, action="audit_package.downloaded").order_by("seq")
    assert [(e.target_type, e.target_id) for e in events] == [("trail", "build-1"),
                                                              ("attestation", str(attestation_id))]


def test_a_flood_of_refused_attempts_makes_two_rows_that_say_how_many(api, org, make_user, settings):
    settings.CSM_ACCESS_DENIED_WINDOW_SECONDS = 300
    outsider = api(user=make_user("outsider@example.com"))
    for _ in range(300):
        assert outsider.get("/api/v2/orgs/acme/members").status_code == 404
    denied = AuditEvent.objects.filter(org=org, action__startswith="access.denied")
    assert denied.count() == 1
    # the window closes: one summary, written once however often the periodic task runs
    later = timezone.now() + timedelta(seconds=301)
    assert summarize_denied_access(now=later) == 1
    assert summarize_denied_access(now=later) == 0
    first, summary = denied.order_by("seq")
    assert summary.action == "access.denied_repeated" and summary.after["more"] == 299
    assert summary.after["total"] == 300 and summary.target_id == str(first.seq)
    assert summary.actor_user_id == first.actor_user_id and summary.after["path"] == "/api/v2/orgs/acme/members"


def test_refusals_are_counted_apart_per_actor_and_ip(api, org, make_user, member_of):
    outsider = api(user=make_user("outsider@example.com"))
    reader = api(user=member_of(org, Role.READER, email="reader@example.com"))
    for ip in ("10.1.0.1", "10.1.0.2"):
        outsider.get("/api/v2/orgs/acme/members", REMOTE_ADDR=ip)
        outsider.get("/api/v2/orgs/acme/members", REMOTE_ADDR=ip)
    reader.get("/api/v2/orgs/acme/audit-events")
    reader.get("/api/v2/orgs/acme/audit-events")
    rows = AuditEvent.objects.filter(org=org, action="access.denied")
    assert sorted((e.actor_label, e.ip) for e in rows) == [
        ("outsider@example.com", "10.1.0.1"), ("outsider@example.com", "10.1.0.2"), ("reader@example.com", "127.0.0.1")]
