"""Extension points of the journal, for the apps above it (the journal imports none of them).

- ``cosignature_added(fn)``: ``fn(org, cosignature, actor)`` runs inside the transaction that stores a
  witness's new cosignature (``journal.witness.add_cosignatures``), so what it writes commits with the
  cosignature or not at all. ``actor`` is what the caller passed: the API request of the person or
  token that handed the cosignature in, or None for a system caller. The audit trail registers here to
  record who added it (audit/apps.py).
"""

from collections.abc import Callable

_cosignature_added: list[Callable] = []


def cosignature_added(fn):
    if fn not in _cosignature_added:
        _cosignature_added.append(fn)
    return fn


def run_cosignature_added(org, cosignature, actor) -> None:
    for fn in list(_cosignature_added):
        fn(org, cosignature, actor)
