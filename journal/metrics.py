"""Scrape-time gauges of the journals (csm/metrics.py registers them for /metrics; docs/operations.md)."""

from django.db.models import F, IntegerField, Max, Min, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from journal.models import JournalCheckpoint, JournalHead, JournalLeaf


def collect_journal_metrics():
    """``csm_journal_leaves``: leaves in every org's journal (the sum of the heads, one row per org).
    ``csm_journal_checkpoint_age_seconds``: how long the oldest leaf not yet under a signed checkpoint has
    waited, across orgs (0 when every leaf is covered): checkpoints are published within seconds, so a
    growing value means the publishing task is not running."""
    leaves = JournalHead.objects.aggregate(total=Sum("last_index"))["total"] or 0
    covered = (JournalCheckpoint.objects.filter(org_id=OuterRef("org_id")).order_by()
               .values("org_id").annotate(size=Max("size")).values("size"))
    first_uncovered = JournalLeaf.objects.filter(org_id=OuterRef("org_id"), index=OuterRef("covered") + 1)
    oldest = (JournalHead.objects
              .annotate(covered=Coalesce(Subquery(covered), Value(0), output_field=IntegerField()))
              .filter(last_index__gt=F("covered"))
              .annotate(waiting_since=Subquery(first_uncovered.values("created_at")[:1]))
              .aggregate(oldest=Min("waiting_since"))["oldest"])
    age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
    yield GaugeMetricFamily("csm_journal_leaves", "Leaves in the journals of every org.", value=leaves)
    yield GaugeMetricFamily("csm_journal_checkpoint_age_seconds", "Age of the oldest journal leaf not yet "
                            "covered by a signed checkpoint, across orgs (0: all covered).", value=age)
