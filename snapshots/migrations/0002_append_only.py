"""Database triggers: reports, outcomes, snapshots, entries and events are never updated or deleted.
An entry's ``to_index`` may be set once (closing its validity range)."""

from django.db import migrations

from csm.db import append_only


class Migration(migrations.Migration):
    dependencies = [("snapshots", "0001_initial")]

    operations = [
        append_only("snapshots_report"),
        append_only("snapshots_reportoutcome"),
        append_only("snapshots_snapshot"),
        append_only("snapshots_snapshotentry", settable_once=("to_index",)),
        append_only("snapshots_snapshotevent"),
    ]
