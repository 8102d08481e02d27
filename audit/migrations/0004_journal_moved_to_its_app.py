import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The journal's models now belong to the journal app (same tables): the audit trail's leaf link points
    there, and the audit app stops declaring them. State only; the database is unchanged."""

    dependencies = [
        ("audit", "0003_remove_journalhead_last_audit_seq"),
        ("journal", "0001_initial"),
        ("evidence", "0003_leaf_in_journal_app"),
        ("reports", "0003_leaf_in_journal_app"),
        ("snapshots", "0005_leaf_in_journal_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name="auditevent",
                name="leaf",
                field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="audit_event",
                                           to="journal.journalleaf"),
            ),
            migrations.DeleteModel(name="JournalHead"),
            migrations.DeleteModel(name="JournalLeaf"),
        ]),
    ]
