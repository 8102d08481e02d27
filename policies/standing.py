"""Where each environment stands now: its compliance state and counts, for the dashboard and lists.

``environment_standings(org, environments) -> {env_id: {...}}`` reads the latest ``SnapshotCompliance``
of every environment in one query (plus one for the attachments), whatever their number:

- ``state``: ``"compliant"`` / ``"non-compliant"`` / ``"unknown"`` (no evaluation yet, or no policy
  attached: csm cannot vouch for an environment nothing polices);
- ``compliant``: True / False / None (unknown); ``unauthorized``, ``non_compliant``, ``unknown``,
  ``running`` counts; ``snapshot_index`` of the evaluation (None without one); ``policed`` (a policy
  is attached); ``require_authorization`` (an attached policy requires provenance).
"""

from django.db.models import F, OuterRef, Subquery

from policies.models import PolicyAttachment, SnapshotCompliance


def environment_standings(org, environments) -> dict[int, dict]:
    environments = list(environments)
    ids = [env.pk for env in environments]
    if not ids:
        return {}
    latest = (SnapshotCompliance.objects.filter(environment_id=OuterRef("environment_id"))
              .order_by("-snapshot_index").values("pk")[:1])
    rows = {row.environment_id: row for row in SnapshotCompliance.objects.for_org(org)
            .filter(environment_id__in=ids, pk=Subquery(latest))}
    policed: dict[int, bool] = {}
    require_authorization: dict[int, bool] = {}
    for env_id, document in (PolicyAttachment.objects.for_org(org).filter(environment_id__in=ids)
                             .filter(policy__versions__version=F("policy__latest_version"))
                             .values_list("environment_id", "policy__versions__document")):
        policed[env_id] = True
        rule = (document or {}).get("provenance") or {}
        if isinstance(rule, dict) and rule.get("required"):
            require_authorization[env_id] = True
    standings = {}
    for env in environments:
        row = rows.get(env.pk)
        is_policed = policed.get(env.pk, False)
        compliant = row.compliant if (row is not None and is_policed) else None
        standings[env.pk] = {
            "state": "unknown" if compliant is None else ("compliant" if compliant else "non-compliant"),
            "compliant": compliant,
            "unauthorized": 0,
            "non_compliant": row.non_compliant_count if row else 0,
            "unknown": row.unknown_count if row else 0,
            "running": env.current_artifact_count,
            "snapshot_index": row.snapshot_index if row else None,
            "policed": is_policed,
            "require_authorization": require_authorization.get(env.pk, False),
        }
    return standings
