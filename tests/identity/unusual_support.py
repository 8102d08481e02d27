"""Helpers of the unusual-activity tests (tests/identity, tests/alerts, tests/policies): reports with a
chosen acceptance time (the clock the change-window check reads), and the flags recorded."""

import json

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.models import AuditEvent
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report

CTX = AuditContext.system("test")


def fp(n: int) -> str:
    return f"{n:064x}"


def server_report(artifacts: dict) -> bytes:
    """``{name: fingerprint}`` → a server-type report body."""
    return json.dumps({"artifacts": [{"digests": {name: fingerprint}, "creationTimestamp": 1_700_000_000}
                                     for name, fingerprint in artifacts.items()]}).encode()


def ingest_at(env, artifacts: dict, when, ctx=CTX):
    """Accept a report as received at ``when`` (how a recorded history is loaded) and ingest it in this
    process; returns the new snapshot or None (unchanged)."""
    report, _ = accept_report(ctx, env, env.type, server_report(artifacts), received_at=when)
    outcome = ingest_report(report.pk)
    env.refresh_from_db()
    return outcome.snapshot


def flags(org, kind: str | None = None) -> list[AuditEvent]:
    """The org's ``security.unusual_activity`` events (of ``kind``), oldest first."""
    events = AuditEvent.objects.for_org(org).filter(action=AuditAction.UNUSUAL_ACTIVITY).order_by("seq")
    return [event for event in events if kind is None or event.after["kind"] == kind]
