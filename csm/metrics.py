"""Prometheus metrics (docs/operations.md, "Metrics and logs"): the metric objects every app increments, and
the registry of scrape-time collectors that apps above ``csm`` plug in from their ``ready()``.

Counters and histograms live in the default prometheus_client registry of each process. With
``PROMETHEUS_MULTIPROC_DIR`` set (several gunicorn processes and Celery workers), prometheus_client writes
them to files in that directory instead and ``/metrics`` adds up every process's files; unset, one process
serves its own. Gauges that describe the whole service (queue depth, journal size, pending reports) are not
kept by any process: a collector computes them with a few cheap queries when ``/metrics`` is scraped.
"""

import logging
import os
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

# Seconds: from a millisecond API answer to a minute-long backlog or PDF.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

HTTP_REQUESTS = Counter("csm_http_requests", "HTTP requests answered, by method, URL route and status.",
                        ["method", "route", "status"])
HTTP_REQUEST_DURATION = Histogram("csm_http_request_duration_seconds", "Time to answer an HTTP request.",
                                  ["method", "route"], buckets=_LATENCY_BUCKETS)
REPORTS_ACCEPTED = Counter("csm_reports_accepted", "Reports stored by the API (committed), by environment type.",
                           ["type"])
REPORTS_INGESTED = Counter("csm_reports_ingested", "Reports ingested (committed), by outcome.", ["outcome"])
REPORTS_FAILED = Counter("csm_reports_failed", "Ingest attempts that raised (the report stays pending and is "
                         "retried), by exception class.", ["error"])
INGEST_LAG = Histogram("csm_ingest_lag_seconds", "From a report's acceptance to its ingest committed.",
                       buckets=_LATENCY_BUCKETS)
SWEEPER_RESENDS = Counter("csm_sweeper_resends", "Pending reports re-enqueued by the sweeper.")
ALERT_DELIVERIES = Counter("csm_alert_deliveries", "Alert delivery attempts, by outcome "
                           "(delivered, retrying, failed, skipped).", ["outcome"])
ALERT_DELIVERY_SECONDS = Histogram("csm_alert_delivery_seconds", "Time of one delivery attempt (webhook, Slack, "
                                   "email), by outcome.", ["outcome"], buckets=_LATENCY_BUCKETS)
REPORT_GENERATION_SECONDS = Histogram("csm_report_generation_seconds", "Time to build and render an audit report "
                                      "(PDF and JSON), by result.", ["result"],
                                      buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200))

# --- scrape-time collectors ------------------------------------------------------------------------------

_scrape_collectors: list[Callable[[], Iterable[Metric]]] = []


def register_scrape_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Apps above csm (snapshots, journal) add a function yielding metric families computed at scrape time,
    from their AppConfig.ready(). Registered once per process; a function raising is logged and skipped, so
    one failing query does not hide the other metrics."""
    if collect not in _scrape_collectors:
        _scrape_collectors.append(collect)


class _ScrapeTimeCollector:
    def collect(self):
        for collect in [queue_depth, *_scrape_collectors]:
            try:
                yield from collect()
            except Exception:
                log.warning("metrics collector %s failed", getattr(collect, "__name__", collect), exc_info=True)


class _DefaultRegistry:
    """The process's own default registry, inside the per-scrape registry."""

    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def scrape_registry() -> CollectorRegistry:
    """What one scrape of /metrics reports: every process's counters (multiprocess mode) or this process's,
    plus the scrape-time gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess  # only in multiprocess mode: it reads the directory

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    registry.register(_ScrapeTimeCollector())
    return registry


def celery_queue_names() -> list[str]:
    from django.conf import settings

    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    names += [route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if route.get("queue")]
    return sorted(set(names))


def queue_depth() -> Iterable[Metric]:
    """Messages waiting per Celery queue: LLEN of each queue's Redis list (kombu's Redis transport keeps a
    queue as a list of that name; priorities are off). Nothing when the broker is not Redis (the embedded
    default runs tasks in-process: there is no queue)."""
    from django.conf import settings

    url = settings.CELERY_BROKER_URL or ""
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return
    import redis  # the Redis client kombu's Redis transport uses

    family = GaugeMetricFamily("csm_celery_queue_depth", "Messages waiting in a Celery queue (Redis broker).",
                               labels=["queue"])
    timeout = settings.CELERY_BROKER_CONNECTION_TIMEOUT
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        pipe = client.pipeline(transaction=False)
        names = celery_queue_names()
        for name in names:
            pipe.llen(name)
        for name, length in zip(names, pipe.execute(), strict=True):
            family.add_metric([name], length)
    finally:
        client.close()
    yield family
