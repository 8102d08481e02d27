import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    """The journal becomes its own app. Its tables keep the names the audit app gave them
    (``audit_journalhead``, ``audit_journalleaf``, with their append-only triggers), so this migration
    only moves the models in Django's state; no table is created, renamed or copied."""

    initial = True

    dependencies = [
        ("audit", "0003_remove_journalhead_last_audit_seq"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="JournalHead",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("last_index", models.BigIntegerField(default=0)),
                        ("last_hash", models.CharField(default="0" * 64, max_length=64)),
                        ("org", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                                     related_name="journal_head", to="tenants.org")),
                    ],
                    options={"db_table": "audit_journalhead"},
                ),
                migrations.CreateModel(
                    name="JournalLeaf",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("index", models.BigIntegerField()),
                        ("kind", models.CharField(choices=[
                            ("audit_event", "Audit event"), ("snapshot", "Snapshot"), ("artifact", "Artifact"),
                            ("attestation", "Attestation"), ("evidence_file", "Evidence file"),
                            ("report", "Audit report")], max_length=30)),
                        ("object_id", models.CharField(blank=True, max_length=64)),
                        ("payload", models.TextField()),
                        ("leaf_hash", models.CharField(max_length=64)),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("org", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                                  related_name="journal_leaves", to="tenants.org")),
                    ],
                    options={"db_table": "audit_journalleaf", "ordering": ["org", "index"]},
                ),
                migrations.AddConstraint(
                    model_name="journalleaf",
                    constraint=models.UniqueConstraint(fields=("org", "index"), name="journal_leaf_unique_org_index"),
                ),
            ],
            database_operations=[],
        ),
    ]
