import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The journal leaf model moved to the journal app with its table unchanged: state only."""

    dependencies = [
        ('journal', '0001_initial'),
        ('reports', '0002_append_only'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.AlterField(
                    model_name='reportoutput',
                    name='leaf',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='report_output', to='journal.journalleaf'),
                ),
        ]),
    ]
