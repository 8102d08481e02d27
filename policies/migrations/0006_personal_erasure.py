"""Erasure of a person (docs/operations.md): who created a policy version may be erased in an update that
raises ``erasures`` by one. Everything else stays refused."""

from django.db import migrations, models

from csm.db import append_only


def _erasable(apps, schema_editor):
    append_only("policies_policyversion", erasable=(("created_by",), "erasures")).code(apps, schema_editor)


def _reverse(apps, schema_editor):
    append_only("policies_policyversion").code(apps, schema_editor)



class Migration(migrations.Migration):

    dependencies = [
        ('policies', '0005_rego_policies_flow_gates_inputs'),
    ]

    operations = [
        migrations.AddField(
            model_name='policyversion',
            name='erasures',
            field=models.PositiveSmallIntegerField(default=0),
        ),
            migrations.RunPython(_erasable, _reverse, elidable=False),
    ]
