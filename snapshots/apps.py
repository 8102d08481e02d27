from django.apps import AppConfig


class SnapshotsConfig(AppConfig):
    """Environments, reports, the snapshot journal, diffs, events and search."""

    name = "snapshots"
