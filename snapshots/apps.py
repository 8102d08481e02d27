from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    """Environments, reports, the snapshot journal, diffs, events and search."""

    name = "snapshots"

    def ready(self):
        from csm.metrics import register_scrape_collector
        from journal.choices import LeafKind
        from journal.personal import register_account_eraser, register_label_column
        from journal.verify import register_row_check
        from snapshots import tasks  # noqa: F401 - register the Celery tasks (run_scheduler looks them up by name)
        from snapshots.erasure import erase_reporters
        from snapshots.metrics import collect_snapshot_metrics
        from snapshots.models import EnvironmentName, Snapshot
        from snapshots.selectors import check_snapshot_leaf

        register_row_check(LeafKind.SNAPSHOT, check_snapshot_leaf)
        register_account_eraser(erase_reporters)
        register_label_column(Snapshot, "reporter_label", "erasures")
        register_label_column(EnvironmentName, "renamed_by", "erasures")
        register_scrape_collector(collect_snapshot_metrics)
