from django.db import migrations

from csm.db import append_only


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [append_only("alerts_deliveryattempt")]
