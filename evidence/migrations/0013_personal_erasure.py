"""Erasure of a person (docs/operations.md): ``personal`` and ``erasures`` on artifacts, attestations and
evidence files, ``erasures`` on flow names and custom type versions; who reported, uploaded, renamed or
defined them may be erased in an update that raises ``erasures`` by one. Everything else stays refused."""

from django.db import migrations, models

from csm.db import append_only


def _erasable(apps, schema_editor):
    append_only("evidence_artifact", settable_once=("leaf_id",),
                erasable=(("reported_by",), "erasures")).code(apps, schema_editor)
    append_only("evidence_attestation", settable_once=("leaf_id", "artifact_id"),
                erasable=(("reported_by",), "erasures")).code(apps, schema_editor)
    append_only("evidence_evidencefile", settable_once=("leaf_id", "dropped_at"),
                erasable=(("uploaded_by",), "erasures")).code(apps, schema_editor)
    append_only("evidence_flowname", settable_once=("released_at",),
                erasable=(("renamed_by",), "erasures")).code(apps, schema_editor)
    append_only("evidence_customattestationtypeversion",
                erasable=(("created_by",), "erasures")).code(apps, schema_editor)


def _reverse(apps, schema_editor):
    append_only("evidence_artifact", settable_once=("leaf_id",)).code(apps, schema_editor)
    append_only("evidence_attestation", settable_once=("leaf_id", "artifact_id")).code(apps, schema_editor)
    append_only("evidence_evidencefile", settable_once=("leaf_id", "dropped_at")).code(apps, schema_editor)
    append_only("evidence_flowname", settable_once=("released_at",)).code(apps, schema_editor)
    append_only("evidence_customattestationtypeversion").code(apps, schema_editor)



class Migration(migrations.Migration):

    dependencies = [
        ('evidence', '0012_evidence_file_retention'),
    ]

    operations = [
        migrations.AddField(
            model_name='artifact',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='artifact',
            name='personal',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='attestation',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='attestation',
            name='personal',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='customattestationtypeversion',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='evidencefile',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='evidencefile',
            name='personal',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='flowname',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
            migrations.RunPython(_erasable, _reverse, elidable=False),
    ]
