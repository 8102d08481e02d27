"""Retention of evidence files (docs/operations.md, "Retention"): ``dropped_at``, settable once (when the
org's retention deleted the stored bytes), like the leaf; every other update and every delete is still refused.
The trigger is installed again so SQLite's column list includes the new column."""

from django.db import migrations, models

from csm.db import append_only


def _reverse_to_leaf_only(apps, schema_editor):
    append_only("evidence_evidencefile", settable_once=("leaf_id",)).code(apps, schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('evidence', '0011_alter_attestation_type'),
    ]

    operations = [
        migrations.AddField(
            model_name='evidencefile',
            name='dropped_at',
            field=models.DateTimeField(blank=True, help_text="When the org's retention deleted the stored bytes",
                                       null=True),
        ),
        migrations.RunPython(append_only("evidence_evidencefile", settable_once=("leaf_id", "dropped_at")).code,
                             _reverse_to_leaf_only, elidable=False),
    ]
