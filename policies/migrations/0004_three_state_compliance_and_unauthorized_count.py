"""Secure defaults: compliance is three-state (``compliant`` NULL = unknown, no policy applied) and each
evaluation counts the unauthorized artifacts.

Evaluations stored before this migration called an environment without a policy compliant "by
definition"; they are rewritten to what they were: unknown (``compliant`` NULL, their artifacts counted
as unknown, not compliant), and the ``changed`` flags of every environment's series are recomputed with
unknown as a state of its own. Allowlisted decisions taken without a policy become unknown too. The
append-only triggers are lifted for this rewrite only and installed again (on SQLite altering a column
rebuilds the table, which drops them anyway). ``unauthorized_count`` of earlier evaluations is 0: it
was not measured then. Backwards restores the old meaning (no policy = compliant)."""

from django.db import migrations, models
from django.db.models import F

from csm.db import append_only

TABLES = (("policies_snapshotcompliance", ()), ("policies_compliancedecision", ("to_index",)))


def _lift(table, settable_once):
    """The reverse of ``append_only``: drop the trigger forwards, install it again backwards."""
    installed = append_only(table, settable_once)
    return migrations.RunPython(installed.reverse_code, installed.code, elidable=False)


_FIRST = object()


def _recompute_changed(Compliance):
    for environment_id in Compliance.objects.values_list("environment_id", flat=True).distinct():
        previous, flips = _FIRST, []
        for pk, compliant, changed in (Compliance.objects.filter(environment_id=environment_id)
                                       .order_by("snapshot_index").values_list("pk", "compliant", "changed")):
            should = previous is _FIRST or previous != compliant  # None (unknown) is a state of its own
            if should != changed:
                flips.append((pk, should))
            previous = compliant
        for pk, should in flips:
            Compliance.objects.filter(pk=pk).update(changed=should)


def unknown_without_policy(apps, schema_editor):
    Compliance = apps.get_model("policies", "SnapshotCompliance")
    Decision = apps.get_model("policies", "ComplianceDecision")
    Compliance.objects.filter(applied_policies=[]).update(
        compliant=None, unknown_count=F("unknown_count") + F("compliant_count"), compliant_count=0)
    _recompute_changed(Compliance)
    rows = list(Decision.objects.filter(basis__policies=[]))
    for row in rows:
        row.status, row.compliant = "unknown", None
        row.decision = {**row.decision, "status": "unknown", "compliant": None}
    Decision.objects.bulk_update(rows, ["status", "compliant", "decision"], batch_size=1000)


def compliant_without_policy(apps, schema_editor):
    Compliance = apps.get_model("policies", "SnapshotCompliance")
    Decision = apps.get_model("policies", "ComplianceDecision")
    Compliance.objects.filter(compliant=None).update(
        compliant=True, compliant_count=F("unknown_count"), unknown_count=0)
    _recompute_changed(Compliance)
    rows = list(Decision.objects.filter(compliant=None))
    for row in rows:
        row.status, row.compliant = "compliant", True
        row.decision = {**row.decision, "status": "compliant", "compliant": True}
    Decision.objects.bulk_update(rows, ["status", "compliant", "decision"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("policies", "0003_compliance_decision_ranges"),
    ]

    operations = [
        *(_lift(table, settable_once) for table, settable_once in TABLES),
        migrations.AddField(
            model_name="snapshotcompliance",
            name="unauthorized_count",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="compliancedecision",
            name="compliant",
            field=models.BooleanField(null=True),
        ),
        migrations.AlterField(
            model_name="snapshotcompliance",
            name="compliant",
            field=models.BooleanField(null=True),
        ),
        migrations.RunPython(unknown_without_policy, compliant_without_policy, elidable=False),
        *(append_only(table, settable_once) for table, settable_once in TABLES),
    ]
