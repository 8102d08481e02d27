import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The journal leaf model moved to the journal app with its table unchanged: state only."""

    dependencies = [
        ('evidence', '0002_append_only'),
        ('journal', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.AlterField(
                    model_name='artifact',
                    name='leaf',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='journal.journalleaf'),
                ),
                migrations.AlterField(
                    model_name='attestation',
                    name='leaf',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='journal.journalleaf'),
                ),
                migrations.AlterField(
                    model_name='evidencefile',
                    name='leaf',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='journal.journalleaf'),
                ),
        ]),
    ]
