from django.db import migrations


class Migration(migrations.Migration):
    """The audit trail numbers its events from its own rows (under the journal head's lock), so the journal
    head no longer carries an audit counter: the journal knows nothing of the apps that append to it."""

    dependencies = [("audit", "0002_append_only")]

    operations = [migrations.RemoveField(model_name="journalhead", name="last_audit_seq")]
