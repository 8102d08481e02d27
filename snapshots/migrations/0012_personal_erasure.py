"""Erasure of a person (docs/operations.md): ``erasures`` on reports, snapshots and environment names; who
reported or renamed them (``reporter_label``, the report's ``actor``, ``renamed_by``) may be erased in an
update that raises it by one. Everything else stays refused."""

from django.db import migrations, models

from csm.db import append_only


def _erasable(apps, schema_editor):
    append_only("snapshots_report", droppable=("payload", "payload_dropped_at"),
                erasable=(("reporter_label", "actor"), "erasures")).code(apps, schema_editor)
    append_only("snapshots_snapshot", erasable=(("reporter_label",), "erasures")).code(apps, schema_editor)
    append_only("snapshots_environmentname", settable_once=("released_at",),
                erasable=(("renamed_by",), "erasures")).code(apps, schema_editor)


def _reverse(apps, schema_editor):
    append_only("snapshots_report", droppable=("payload", "payload_dropped_at")).code(apps, schema_editor)
    append_only("snapshots_snapshot").code(apps, schema_editor)
    append_only("snapshots_environmentname", settable_once=("released_at",)).code(apps, schema_editor)



class Migration(migrations.Migration):

    dependencies = [
        ('snapshots', '0011_report_body_retention'),
    ]

    operations = [
        migrations.AddField(
            model_name='environmentname',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='report',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='snapshot',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
            migrations.RunPython(_erasable, _reverse, elidable=False),
    ]
