"""Extension points of the identity app for the floors above it.

``unusual_activity``: functions ``fn(event)`` called with the ``security.unusual_activity`` audit event,
after the transaction that recorded it commits (alerts registers ON_UNUSUAL_ACTIVITY here)."""

unusual_activity: list = []


def on_unusual_activity(fn):
    unusual_activity.append(fn)
    return fn
