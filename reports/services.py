"""All writes of the reports app: requesting a report (audited), the worker's progress, storing the
generated output (append-only, committed to the journal), and recording downloads."""

import hashlib
import json
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from journal.canonical import canonical_json
from journal.choices import LeafKind
from journal.models import JournalLeaf, PersonKey
from journal.services import append_leaf
from journal.verify import register_row_check
from reports import access
from reports.choices import ReportStatus
from reports.models import AuditReport, ReportOutput
from reports.params import validate_params
from tenants.models import Org

# A report pending or running for longer than this is not offered again in place of a new request
# (its worker may have died; the new request gets a fresh generation).
IN_FLIGHT_REUSE_WINDOW = timedelta(hours=1)


@transaction.atomic(durable=True)
def request_report(ctx: AuditContext, org, kind: str, raw_params: dict, *, role: str) -> AuditReport:
    """Validate, store a pending report, audit the request and enqueue its generation on commit.

    ``role`` is the requester's role: the report contains only the parts that role may read
    (``access.plan``, stored on the row). Views refuse a kind the role may not read with a 403 first
    (``access.require_to_request``); here it is refused again so no caller can skip the rule.
    Raises ``csm.errors.ServiceError`` naming the bad field."""
    kind, params, title, sections = _validated(org, kind, raw_params, role)
    return _create(ctx, org, kind, params, title, sections)


@transaction.atomic(durable=True)
def request_report_once(ctx: AuditContext, org, kind: str, raw_params: dict, *,
                        role: str) -> tuple[AuditReport, bool]:
    """Like ``request_report``, but a report of the same kind, parameters and sections that is still
    pending or running (requested within ``IN_FLIGHT_REUSE_WINDOW``) is returned instead of queueing
    the same work twice: ``(report, created)``. Requests of one org are serialised on the org row, so two
    clicks racing each other queue one report. Nothing is written when the running one is reused."""
    kind, params, title, sections = _validated(org, kind, raw_params, role)
    list(Org.objects.select_for_update().filter(pk=org.pk).values_list("pk", flat=True))
    in_flight = AuditReport.objects.for_org(org).filter(
        kind=kind, status__in=[ReportStatus.PENDING, ReportStatus.RUNNING],
        created_at__gte=timezone.now() - IN_FLIGHT_REUSE_WINDOW,
    ).order_by("-created_at").only("pk", "params", "sections")
    wanted = _normal(params), _normal(sections)
    for candidate in in_flight:
        if (_normal(candidate.params), _normal(candidate.sections)) == wanted:
            return AuditReport.objects.get(pk=candidate.pk), False
    return _create(ctx, org, kind, params, title, sections), True


def _normal(value):
    """A JSON value as stored and read back (tuples become lists), for comparing with a stored one."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _validated(org, kind: str, raw_params: dict, role: str):
    kind, params, title = validate_params(org, kind, raw_params)
    lacking = access.missing(role, access.rule(kind).permissions)
    if lacking:
        raise ServiceError(access.refusal(role, lacking[0], f"the {kind.label.lower()}"), "kind", code="forbidden")
    return kind, params, title, access.plan(kind, role)


def _create(ctx: AuditContext, org, kind, params: dict, title: str, sections) -> AuditReport:
    report = AuditReport.objects.create(
        org=org, kind=kind, params=params, title=title[:300], sections=sections,
        requested_by=ctx.actor_label[:255], requested_by_user_id=ctx.user_id, requested_by_token_id=ctx.token_id,
    )
    record_event(ctx, org, AuditAction.AUDIT_REPORT_REQUESTED, ("audit_report", report.pk, report.title),
                 after={"kind": kind, "params": params, "sections": sections})
    transaction.on_commit(lambda: enqueue_generation(report.pk, ctx))
    return report


def enqueue_generation(report_id, ctx: AuditContext) -> None:
    from reports.tasks import generate_report

    generate_report.delay(str(report_id), ctx.to_dict())


def claim_report(report_id) -> AuditReport | None:
    """Mark a pending (or interrupted running) report as running; None when it is gone or finished."""
    now = timezone.now()
    claimed = AuditReport.objects.filter(pk=report_id, status__in=[ReportStatus.PENDING, ReportStatus.RUNNING]).update(
        status=ReportStatus.RUNNING, started_at=now, progress=5, progress_note="collecting records", error="",
    )
    if not claimed:
        return None
    return AuditReport.objects.select_related("org").get(pk=report_id)


def set_progress(report_id, percent: int, note: str = "") -> None:
    """Progress is a status-row update outside any transaction, so pollers see it at once."""
    AuditReport.objects.filter(pk=report_id, status=ReportStatus.RUNNING).update(
        progress=max(0, min(99, int(percent))), progress_note=note[:200],
    )


def data_bytes(data: dict) -> bytes:
    """The JSON export: sorted keys, no white space, UTF-8 — the journal's canonical form — so its
    SHA-256 is reproducible. Builders put only strings, integers, lists and dicts in it, so this skips
    canonical_json's normalising round trip (a year of a busy environment is ~20 MiB of JSON)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@transaction.atomic(durable=True)
def store_output(report_id, data: bytes, data_sha256: str, pdf: bytes, page_count: int,
                 journal: dict) -> ReportOutput | None:
    """Store the generated PDF + JSON once, append its journal leaf and mark the report done.

    ``journal`` is the report's ``integrity.journal`` (the position it covers). Idempotent: a second
    delivery of the task finds the output and changes nothing."""
    report = AuditReport.objects.select_for_update().select_related("org").filter(pk=report_id).first()
    if report is None:
        return None
    existing = ReportOutput.objects.filter(report=report).first()
    if existing is not None:
        return existing
    output = ReportOutput(
        org=report.org, report=report, pdf=pdf, pdf_sha256=sha256(pdf), pdf_size=len(pdf), page_count=page_count,
        data_json=data, data_sha256=data_sha256, data_size=len(data),
        journal_index=journal["last_index"], journal_hash=journal["last_hash"],
    )
    output.leaf = append_leaf(report.org, LeafKind.REPORT, output.leaf_data(), object_id=str(report.pk))
    output.save(force_insert=True)
    AuditReport.objects.filter(pk=report.pk).update(
        status=ReportStatus.DONE, progress=100, progress_note="", finished_at=timezone.now(),
    )
    return output


def mark_failed(report_id, message: str) -> None:
    AuditReport.objects.filter(pk=report_id).exclude(status=ReportStatus.DONE).update(
        status=ReportStatus.FAILED, error=message[:2000], finished_at=timezone.now(),
    )


@transaction.atomic(durable=True)
def record_download(ctx: AuditContext, report: AuditReport, fmt: str) -> None:
    digest = report.output.pdf_sha256 if fmt == "pdf" else report.output.data_sha256
    record_event(ctx, report.org, AuditAction.AUDIT_REPORT_DOWNLOADED, ("audit_report", report.pk, report.title),
                 after={"format": fmt, "sha256": digest})


def _check_report_leaf(leaf: JournalLeaf) -> str | None:
    output = ReportOutput.objects.filter(leaf_id=leaf.pk).select_related("report").first()
    if output is None:
        return "its report output row is missing"
    if canonical_json(output.leaf_data()) != canonical_json(json.loads(leaf.payload)["data"]):
        return f"report output {output.report_id} was altered after it was stored"
    if output.withdrawn_at is not None:  # erased with a person it printed: only the hashes are left
        return None
    if sha256(bytes(output.pdf)) != output.pdf_sha256 or sha256(bytes(output.data_json)) != output.data_sha256:
        return f"report output {output.report_id} no longer matches its stored hashes"
    return None


register_row_check(LeafKind.REPORT, _check_report_leaf)


# --- erasure of a person (audit/erasure.py runs it) -----------------------------------------------------

def withdrawn_message(output: ReportOutput) -> str:
    return (f"This report printed a person who was erased on {output.withdrawn_at:%Y-%m-%d}; its PDF and JSON were "
            f"deleted. Their SHA-256 are kept (PDF {output.pdf_sha256}, JSON {output.data_sha256}) and its journal "
            "leaf still verifies. Request the report again for a copy without them.")


def withdraw_outputs_naming(ctx: AuditContext, users, email: str) -> dict[str, int]:
    """Stored reports that print the person (their email in the JSON the PDF shows, exactly) are withdrawn:
    PDF and JSON deleted, hashes and leaf kept, each withdrawal audited in its org. Only the reports of orgs
    that know the person are read (every org whose journal mentions someone has a key for them)."""
    needles = [email.encode()] + [user.get_username().lower().encode() for user in users if not user.email]
    orgs = PersonKey.objects.filter(Q(user__in=users) | Q(user=None, email=email)).values("org_id")
    now = timezone.now()
    outputs = ReportOutput.objects.filter(withdrawn_at=None, org_id__in=orgs).order_by("pk")
    naming = [pk for pk, data in outputs.values_list("pk", "data_json").iterator(chunk_size=20)
              if any(needle in bytes(data).lower() for needle in needles)]
    withdrawn = 0
    for pk in naming:  # after the scan: the first audit event below locks the org's journal until commit
        ReportOutput.objects.filter(pk=pk).update(pdf=b"", data_json=b"", withdrawn_at=now)
        output = ReportOutput.objects.select_related("report", "org").get(pk=pk)
        record_event(ctx, output.org, AuditAction.AUDIT_REPORT_WITHDRAWN,
                     ("audit_report", output.report_id, output.report.title),
                     after={"reason": "person erased", "pdf_sha256": output.pdf_sha256,
                            "data_sha256": output.data_sha256})
        withdrawn += 1
    return {"reports withdrawn": withdrawn}
