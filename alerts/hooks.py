"""How alerts plug into the snapshot journal (registered in ``AlertsConfig.ready``, after policies, so
the snapshot is already evaluated when alerts are raised)."""


def raise_snapshot_alerts(snapshot_id: int, ctx_dict: dict) -> None:
    from .services import alerts_for_snapshot

    alerts_for_snapshot(snapshot_id)


def follow_environment_rename(org, environment_id: int, old_name: str, new_name: str, ctx_dict: dict) -> None:
    """Inside the rename's transaction: every alert action that names the environment now names it by its new
    name (``alerts.services.rename_environment_in_actions``), so the rename never silently stops an alert."""
    from .services import rename_environment_in_actions

    rename_environment_in_actions(org, old_name, new_name, ctx_dict)


def raise_vulnerability_alerts(org_id: int, match_ids: list[int], cause: str) -> None:
    """``vulns.hooks.matches_added``: runs as soon as new matches committed (no polling in between), so
    an advisory's import alerts within a second; the deliveries go out as Celery tasks."""
    from .services import alerts_for_new_matches

    alerts_for_new_matches(org_id, match_ids, cause)


def raise_unusual_activity_alert(event) -> None:
    """``identity.hooks.unusual_activity`` (after the ``security.unusual_activity`` audit event committed):
    ON_UNUSUAL_ACTIVITY to every action listening for it; the deliveries go out as Celery tasks."""
    from .services import alerts_for_unusual_activity

    alerts_for_unusual_activity(event.pk)
