from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    """Environments, reports, the snapshot journal, diffs, events and search."""

    name = "snapshots"

    def ready(self):
        from csm.metrics import register_scrape_collector
        from journal.choices import LeafKind
        from journal.verify import register_row_check
        from snapshots import tasks  # noqa: F401 - register the Celery tasks (run_scheduler looks them up by name)
        from snapshots.metrics import collect_snapshot_metrics
        from snapshots.selectors import check_snapshot_leaf

        register_row_check(LeafKind.SNAPSHOT, check_snapshot_leaf)
        register_scrape_collector(collect_snapshot_metrics)
