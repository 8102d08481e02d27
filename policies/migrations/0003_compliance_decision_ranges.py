"""Compliance decisions stored as validity ranges instead of a full list per snapshot.

Existing evaluations are converted: per environment, the ``artifacts`` lists of its evaluations are
walked in snapshot order and each artifact's decision becomes a range ``[from_index, to_index)`` that
is closed where the decision (or the artifact) changes; then the lists are dropped. Reversible: going
back rebuilds every evaluation's list from the ranges.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from csm.db import append_only

BATCH = 2000


def _key(item: dict) -> tuple[str, str]:
    return item["name"], item.get("fingerprint") or ""


def _row(Decision, env_id, org_id, decision, applied, start, end):
    entry = decision.get("allowlist_entry")
    return Decision(
        org_id=org_id, environment_id=env_id, name=decision["name"], fingerprint=decision.get("fingerprint") or "",
        status=decision["status"], compliant=decision["compliant"], allowlisted=bool(decision.get("allowlisted")),
        decision=decision, basis={"policies": applied, "allowlist_entry": entry["id"] if entry else None},
        from_index=start, to_index=end,
    )


def lists_to_ranges(apps, schema_editor):
    Compliance = apps.get_model("policies", "SnapshotCompliance")
    Decision = apps.get_model("policies", "ComplianceDecision")
    env_ids = Compliance.objects.order_by().values_list("environment_id", flat=True).distinct()
    for env_id in list(env_ids):
        in_force: dict[tuple[str, str], tuple] = {}  # key → (decision, from_index, org_id, applied policies)
        pending = []
        evaluations = (Compliance.objects.filter(environment_id=env_id).order_by("snapshot_index")
                       .values_list("org_id", "snapshot_index", "artifacts", "applied_policies"))
        for org_id, index, artifacts, applied in evaluations.iterator(chunk_size=200):
            now = {_key(item): item for item in artifacts}
            for key, (decision, start, org, basis) in list(in_force.items()):
                if now.get(key) != decision:
                    pending.append(_row(Decision, env_id, org, decision, basis, start, index))
                    del in_force[key]
            for key, decision in now.items():
                if key not in in_force:
                    in_force[key] = (decision, index, org_id, applied)
            if len(pending) >= BATCH:
                Decision.objects.bulk_create(pending, batch_size=BATCH)
                pending = []
        pending.extend(_row(Decision, env_id, org, decision, basis, start, None)
                       for decision, start, org, basis in in_force.values())
        Decision.objects.bulk_create(pending, batch_size=BATCH)


def ranges_to_lists(apps, schema_editor):
    """Backwards: every evaluation gets its list back (the append-only trigger is dropped by then and
    re-installed at the end, as 0002 left it)."""
    from django.db.models import Q

    Compliance = apps.get_model("policies", "SnapshotCompliance")
    Decision = apps.get_model("policies", "ComplianceDecision")
    for row in Compliance.objects.all().iterator(chunk_size=200):
        decisions = list(Decision.objects.filter(environment_id=row.environment_id, from_index__lte=row.snapshot_index)
                         .filter(Q(to_index__isnull=True) | Q(to_index__gt=row.snapshot_index))
                         .values_list("decision", flat=True))
        decisions.sort(key=_key)
        Compliance.objects.filter(pk=row.pk).update(artifacts=decisions)
    append_only("policies_snapshotcompliance").code(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("policies", "0002_append_only"),
        ("snapshots", "0001_initial"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ComplianceDecision",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.TextField()),
                ("fingerprint", models.CharField(blank=True, max_length=64)),
                ("status", models.CharField(max_length=20)),
                ("compliant", models.BooleanField()),
                ("allowlisted", models.BooleanField(default=False)),
                ("decision", models.JSONField()),
                ("basis", models.JSONField(default=dict)),
                ("from_index", models.PositiveIntegerField()),
                ("to_index", models.PositiveIntegerField(blank=True, null=True)),
                ("decided_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("environment", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                                  to="snapshots.environment")),
                ("org", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                          to="tenants.org")),
            ],
            options={
                "indexes": [
                    models.Index(fields=["environment", "from_index", "to_index"], name="decision_env_range"),
                    models.Index(fields=["environment", "to_index"], name="decision_env_to"),
                    models.Index(fields=["environment", "fingerprint"], name="decision_env_fp"),
                    models.Index(fields=["environment"], condition=models.Q(allowlisted=True, to_index=None),
                                 name="decision_env_allowlisted"),
                ],
            },
        ),
        migrations.CreateModel(
            name="DecisionRecheck",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("fingerprint", models.CharField(max_length=64)),
                ("reason", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("environment", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                                  to="snapshots.environment")),
                ("org", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                          to="tenants.org")),
            ],
            options={"indexes": [models.Index(fields=["environment", "fingerprint"], name="recheck_env_fp")]},
        ),
        migrations.RunPython(lists_to_ranges, ranges_to_lists, elidable=False),
        migrations.RemoveField(model_name="snapshotcompliance", name="artifacts"),
        # Re-installed: on SQLite removing a column rebuilds the table, which drops its triggers.
        append_only("policies_snapshotcompliance"),
        append_only("policies_compliancedecision", settable_once=("to_index",)),
    ]
