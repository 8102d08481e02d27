"""Structured logs (docs/operations.md, "Metrics and logs"): which request, report and org a log line belongs
to, carried in context variables from the API request into the Celery worker that ingests its report.

``RequestIdMiddleware`` sets the request id for a request; ``csm.celery`` publishes it in each task's
headers and sets it again in the worker around the task (``task_prerun`` / ``task_postrun``); services set
the report and org they work on with ``log_context``. ``LogContextFilter`` copies them onto every record
(the ``context`` filter of the console handler), and ``JsonFormatter`` (``CSM_LOG_FORMAT=json``) writes one
JSON object per line.
"""

import contextlib
import contextvars
import json
import logging
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("csm_request_id", default="")
report_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("csm_report_id", default=None)
org_var: contextvars.ContextVar[str] = contextvars.ContextVar("csm_org", default="")

_FIELDS = {"request_id": request_id_var, "report_id": report_id_var, "org": org_var}


@contextlib.contextmanager
def log_context(**values):
    """Within the block, log lines carry these fields (request_id, report_id, org); None leaves one as is."""
    tokens = [(_FIELDS[name], _FIELDS[name].set(value)) for name, value in values.items() if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class LogContextFilter(logging.Filter):
    """Adds ``request_id``, ``report_id`` and ``org`` from the current context to every record (a value the
    record already has, from ``extra=``, wins)."""

    def filter(self, record):
        for name, var in _FIELDS.items():
            if getattr(record, name, None) in (None, ""):
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, and report_id,
    org and exception when there are any."""

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
        }
        report_id = getattr(record, "report_id", None) or report_id_var.get()
        if report_id is not None:
            line["report_id"] = report_id
        org = getattr(record, "org", "") or org_var.get()
        if org:
            line["org"] = org
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
