from django.db import migrations

from csm.db import append_only


class Migration(migrations.Migration):
    """Generated report outputs are append-only, enforced by database triggers."""

    dependencies = [("reports", "0001_initial")]

    operations = [append_only("reports_reportoutput")]
