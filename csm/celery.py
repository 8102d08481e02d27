"""The Celery application. Settings live in csm/settings.py under CELERY_*.

The log context travels with each task (csm/logs.py): a task published while a request is handled carries
that request's id in a message header, and the worker sets it around the task, so the worker's log lines
name the same ``request_id`` as the API's."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, before_task_publish, task_postrun, task_prerun

from csm.logs import JsonFormatter, LogContextFilter, request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csm.settings")

app = Celery("csm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

REQUEST_ID_HEADER = "csm_request_id"


@after_setup_logger.connect
@after_setup_task_logger.connect
def _structured_worker_logs(logger=None, **kwargs):
    """A worker process sets up its own log handlers (replacing Django's LOGGING on the root logger): give them
    the same context filter and, with CSM_LOG_FORMAT=json, the same JSON lines. Plain stays Celery's format."""
    from django.conf import settings

    for handler in logger.handlers if logger is not None else []:
        handler.addFilter(LogContextFilter())
        if settings.CSM_LOG_FORMAT == "json":
            handler.setFormatter(JsonFormatter())

_tokens: dict[str, object] = {}


@before_task_publish.connect
def _publish_request_id(headers=None, **kwargs):
    request_id = request_id_var.get()
    if request_id and headers is not None and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


@task_prerun.connect
def _reuse_connections(task=None, **kwargs):
    """What Django does at every request's start: drop a connection past CONN_MAX_AGE or left unusable by an
    error, and health-check the others on first use (CONN_HEALTH_CHECKS). Not for a task run in-process."""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()


@task_prerun.connect
def _enter_task_log_context(task_id=None, task=None, **kwargs):
    request = getattr(task, "request", None)
    request_id = getattr(request, REQUEST_ID_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        REQUEST_ID_HEADER)
    if request_id and task_id:  # a task run in-process (no broker) keeps its request's id as it is
        _tokens[task_id] = request_id_var.set(str(request_id)[:64])


@task_postrun.connect
def _leave_task_log_context(task_id=None, **kwargs):
    token = _tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)
