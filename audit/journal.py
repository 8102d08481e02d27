"""Verification of an org's journal: the chain of leaves and the rows they commit to.

``verify_journal(org)`` walks the leaves in index order and returns the first problem found (or
None): a gap or reordering in the numbering, a leaf whose payload does not hash to its stored hash,
a broken ``prev`` link, an audit event whose row no longer matches the leaf that committed to it, a
missing audit sequence number, or a head that does not match the last leaf.

Other apps register a check for their own leaf kinds with ``register_row_check(kind, fn)``; ``fn``
receives the leaf and returns an error message or None.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from audit.canonical import GENESIS_HASH, canonical_json, leaf_hash
from audit.choices import LeafKind
from audit.models import AuditEvent, JournalHead, JournalLeaf

_ROW_CHECKS: dict[str, Callable[[JournalLeaf], str | None]] = {}


def register_row_check(kind: str, check: Callable[[JournalLeaf], str | None]) -> None:
    _ROW_CHECKS[kind] = check


@dataclass
class JournalProblem:
    index: int | None
    message: str

    def __str__(self):
        where = f"leaf #{self.index}" if self.index is not None else "journal"
        return f"{where}: {self.message}"


def _check_audit_event(leaf: JournalLeaf) -> str | None:
    event = AuditEvent.objects.filter(leaf_id=leaf.pk).first()
    if event is None:
        return "its audit event row is missing"
    data = json.loads(leaf.payload)["data"]
    if canonical_json(event.canonical_data()) != canonical_json(data):
        return f"audit event seq {event.seq} (id {event.pk}) was altered after it was recorded"
    return None


register_row_check(LeafKind.AUDIT_EVENT, _check_audit_event)


def verify_journal(org) -> JournalProblem | None:
    expected_index = 1
    prev = GENESIS_HASH
    audit_seq = 0
    leaves = JournalLeaf.objects.filter(org=org).order_by("index").iterator(chunk_size=2000)
    for leaf in leaves:
        if leaf.index != expected_index:
            return JournalProblem(expected_index, f"missing or reordered: found #{leaf.index} where #{expected_index} "
                                                  "was expected")
        if leaf_hash(leaf.payload.encode()) != leaf.leaf_hash:
            return JournalProblem(leaf.index, "payload does not match its leaf hash")
        try:
            payload = json.loads(leaf.payload)
        except ValueError:
            return JournalProblem(leaf.index, "payload is not JSON")
        if payload.get("index") != leaf.index or payload.get("prev") != prev or leaf.prev_hash != prev:
            return JournalProblem(leaf.index, "chain broken: previous hash does not match")
        if payload.get("kind") != leaf.kind or payload.get("org") != org.slug:
            return JournalProblem(leaf.index, "kind or org in the payload does not match the row")
        check = _ROW_CHECKS.get(leaf.kind)
        if check is not None:
            problem = check(leaf)
            if problem:
                return JournalProblem(leaf.index, problem)
        if leaf.kind == LeafKind.AUDIT_EVENT:
            audit_seq += 1
            if payload["data"].get("seq") != audit_seq:
                return JournalProblem(leaf.index, f"audit event seq {audit_seq} is missing or out of order")
        prev = leaf.leaf_hash
        expected_index += 1
    if AuditEvent.objects.filter(org=org).count() != audit_seq:
        return JournalProblem(None, "an audit event exists that no journal leaf commits to")
    head = JournalHead.objects.filter(org=org).first()
    last_index = expected_index - 1
    if head is not None and (head.last_index != last_index or head.last_hash != prev):
        return JournalProblem(None, f"head says #{head.last_index} but the last leaf is #{last_index}: "
                                    "leaves were removed from the end")
    return None
