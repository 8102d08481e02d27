"""How alerts plug into the snapshot journal (registered in ``AlertsConfig.ready``, after policies, so
the snapshot is already evaluated when alerts are raised)."""


def raise_snapshot_alerts(snapshot_id: int, ctx_dict: dict) -> None:
    from .services import alerts_for_snapshot

    alerts_for_snapshot(snapshot_id)
