import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The journal leaf model moved to the journal app with its table unchanged: state only."""

    dependencies = [
        ('journal', '0001_initial'),
        ('snapshots', '0004_lz4_compression'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.AlterField(
                    model_name='snapshot',
                    name='leaf',
                    field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='journal.journalleaf'),
                ),
        ]),
    ]
