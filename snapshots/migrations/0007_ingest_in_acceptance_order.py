"""Ingest follows acceptance order: each environment remembers the last report it ingested, and an index
on (environment, id) finds the next pending one. Existing environments start after their newest report
that already has an outcome; a report pending below that mark (its turn passed under the old ingest)
is recorded as ``superseded`` when it is next delivered, as before."""

from django.db import migrations, models
from django.db.models import Max


def forwards(apps, schema_editor):
    Environment = apps.get_model("snapshots", "Environment")
    ReportOutcome = apps.get_model("snapshots", "ReportOutcome")
    marks = ReportOutcome.objects.values("report__environment_id").annotate(last=Max("report_id"))
    for mark in marks.iterator():
        Environment.objects.filter(pk=mark["report__environment_id"]).update(last_ingested_report_id=mark["last"])


class Migration(migrations.Migration):

    dependencies = [
        ("snapshots", "0006_report_interval_bounds"),
    ]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="last_ingested_report_id",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="report",
            index=models.Index(fields=["environment", "id"], name="report_env_sequence"),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
