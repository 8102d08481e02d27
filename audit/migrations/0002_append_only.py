from django.db import migrations

from csm.db import append_only


class Migration(migrations.Migration):
    """Audit events and journal leaves are append-only, enforced by database triggers."""

    dependencies = [("audit", "0001_initial")]

    operations = [append_only("audit_auditevent"), append_only("audit_journalleaf")]
