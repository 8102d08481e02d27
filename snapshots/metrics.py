"""Scrape-time gauge of the report outbox (csm/metrics.py registers it for /metrics; docs/operations.md)."""

from django.db.models import F
from prometheus_client.core import GaugeMetricFamily

from snapshots.models import Report


def collect_snapshot_metrics():
    """``csm_reports_pending``: accepted reports not yet ingested. Every report above its environment's
    ingest mark is pending (ingest follows acceptance order), so this reads the (environment, id) index
    instead of looking for reports without an outcome."""
    pending = Report.objects.filter(pk__gt=F("environment__last_ingested_report_id")).count()
    yield GaugeMetricFamily("csm_reports_pending", "Accepted reports waiting to be ingested.", value=pending)
