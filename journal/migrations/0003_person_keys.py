"""Person keys (journal/personal.py): a key per person and org under which leaves commit to personal
values, and the index of the leaves that do."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('journal', '0002_merkle_tree_checkpoints'),
        ('tenants', '0005_org_retention'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PersonKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.CharField(blank=True, help_text='Lower case; only for a person who is no user', max_length=254)),
                ('key', models.BinaryField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('erased_at', models.DateTimeField(blank=True, null=True)),
                ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.org')),
                ('user', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.CreateModel(
            name='PersonalRef',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('leaf', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='journal.journalleaf')),
                ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.org')),
                ('person', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='refs', to='journal.personkey')),
            ],
        ),
        migrations.AddConstraint(
            model_name='personkey',
            constraint=models.UniqueConstraint(condition=models.Q(('user__isnull', False)), fields=('org', 'user'), name='person_key_unique_user'),
        ),
        migrations.AddConstraint(
            model_name='personkey',
            constraint=models.UniqueConstraint(condition=models.Q(('user__isnull', True), models.Q(('email', ''), _negated=True)), fields=('org', 'email'), name='person_key_unique_email'),
        ),
        migrations.AddConstraint(
            model_name='personalref',
            constraint=models.UniqueConstraint(fields=('person', 'leaf'), name='personal_ref_unique'),
        ),
    ]
