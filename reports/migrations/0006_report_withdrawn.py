"""Erasure of a person (docs/operations.md): a stored report that printed them is withdrawn — its PDF and
JSON emptied in the one update that sets ``withdrawn_at`` from NULL; every other UPDATE and every DELETE is
still refused."""

from django.db import migrations, models

from csm.db import append_only


def _reverse_to_strict(apps, schema_editor):
    append_only("reports_reportoutput").code(apps, schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0005_exposure_kind'),
    ]

    operations = [
        migrations.AddField(
            model_name='reportoutput',
            name='withdrawn_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(
            append_only("reports_reportoutput", droppable=(("pdf", "data_json"), "withdrawn_at")).code,
            _reverse_to_strict, elidable=False),
    ]
