"""Celery task generating a report: re-reads its row, builds the data with streaming queries,
renders the PDF and stores both once. Retries database hiccups with backoff and jitter; exits
cleanly when the report row is gone or already done."""

import logging
import time

from celery import shared_task
from django.db import OperationalError

from csm.metrics import REPORT_GENERATION_SECONDS
from reports import services
from reports.builders import build_report
from reports.rendering import render_pdf

log = logging.getLogger(__name__)


@shared_task(
    # An explicit name: the default one follows the module path, which changed when reports/ moved out of
    # audit/ (and "audit.reports.tasks.*" never matched the "reports.*" route to the reports queue).
    name="reports.generate_report", bind=True, acks_late=True, autoretry_for=(OperationalError,),
    retry_backoff=5, retry_backoff_max=300, retry_jitter=True, max_retries=5,
)
def generate_report(self, report_id: str, ctx_dict: dict | None = None) -> str | None:
    report = services.claim_report(report_id)
    if report is None:
        log.info("report %s is gone or already finished; nothing to do", report_id)
        return None
    started = time.perf_counter()
    try:
        data = build_report(report, lambda pct, note: services.set_progress(report_id, pct, note))
        services.set_progress(report_id, 85, "rendering PDF")
        content = services.data_bytes(data)
        data_sha256 = services.sha256(content)
        pdf, pages = render_pdf(data, content)
        services.set_progress(report_id, 97, "storing")
        output = services.store_output(report_id, content, data_sha256, pdf, pages, data["integrity"]["journal"])
    except OperationalError as error:
        if self.request.retries >= self.max_retries:
            services.mark_failed(report_id, f"database unavailable: {error}")
        REPORT_GENERATION_SECONDS.labels("failed").observe(time.perf_counter() - started)
        raise
    except Exception as error:
        log.exception("report %s failed", report_id)
        services.mark_failed(report_id, f"{type(error).__name__}: {error}")
        REPORT_GENERATION_SECONDS.labels("failed").observe(time.perf_counter() - started)
        return None
    REPORT_GENERATION_SECONDS.labels("done").observe(time.perf_counter() - started)
    return output.pdf_sha256 if output else None
