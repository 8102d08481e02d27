from django.db import migrations

from csm.db import append_only


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial")]

    operations = [
        append_only("policies_policyversion"),
        append_only("policies_snapshotcompliance"),
    ]
