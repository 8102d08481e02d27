"""Staff views of the journal. Journal tables are append-only: the admin shows them read-only."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin
from snapshots.models import Environment, EnvironmentName, Report, ReportOutcome, Snapshot, SnapshotEntry, SnapshotEvent


@admin.register(Environment)
class EnvironmentAdmin(ReadOnlyAdmin):
    list_display = ("name", "org", "type", "last_snapshot_index", "current_artifact_count", "last_report_at",
                    "archived")
    list_filter = ("org", "type", "archived")
    search_fields = ("name", "org__slug")


@admin.register(EnvironmentName)
class EnvironmentNameAdmin(ReadOnlyAdmin):
    list_display = ("name", "renamed_to", "environment", "org", "until_index", "renamed_at", "released_at")
    list_filter = ("org",)
    search_fields = ("name", "renamed_to")


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("id", "org", "environment", "type", "entry_count", "payload_bytes", "reporter_label",
                    "received_at")
    list_filter = ("org", "type")
    exclude = ("payload",)


@admin.register(ReportOutcome)
class ReportOutcomeAdmin(ReadOnlyAdmin):
    list_display = ("report", "status", "snapshot", "finished_at")


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ("environment", "index", "created_at", "reason", "artifact_count", "started_count",
                    "exited_count", "scaled_count")
    list_filter = ("org", "reason")


@admin.register(SnapshotEntry)
class SnapshotEntryAdmin(ReadOnlyAdmin):
    list_display = ("environment", "name", "fingerprint", "instance_count", "from_index", "to_index")
    list_filter = ("org",)
    search_fields = ("fingerprint", "name")


@admin.register(SnapshotEvent)
class SnapshotEventAdmin(ReadOnlyAdmin):
    list_display = ("environment", "snapshot_index", "kind", "name", "fingerprint", "created_at")
    list_filter = ("org", "kind")
