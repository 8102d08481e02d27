"""Retention of report bodies (docs/operations.md, "Retention"): ``payload_dropped_at``, and the report table's
append-only trigger now allows exactly one update — emptying ``payload`` while setting ``payload_dropped_at``
from NULL, every other column unchanged. Every other UPDATE and every DELETE is still refused."""

from django.db import migrations, models

from csm.db import append_only


def _reverse_to_strict(apps, schema_editor):
    append_only("snapshots_report").code(apps, schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('snapshots', '0010_change_windows'),
    ]

    operations = [
        migrations.AddField(
            model_name='report',
            name='payload_dropped_at',
            field=models.DateTimeField(blank=True, help_text='When retention emptied payload (hash and size kept)',
                                       null=True),
        ),
        migrations.AddIndex(
            model_name='report',
            index=models.Index(condition=models.Q(('payload_dropped_at__isnull', True)),
                               fields=['org', 'received_at'], name='report_body_kept'),
        ),
        migrations.RunPython(append_only("snapshots_report", droppable=("payload", "payload_dropped_at")).code,
                             _reverse_to_strict, elidable=False),
    ]
