"""Verification of an org's journal: the chain of leaves and the rows they commit to.

``verify_journal(org)`` walks the leaves in index order and returns the first problem found (or
None): a gap or reordering in the numbering, a leaf whose payload does not hash to its stored hash,
a broken ``prev`` link, a row that no longer matches the leaf that committed to it, or a head that
does not match the last leaf.

The journal knows none of the apps that append to it. Each registers what only it can check:
``register_row_check(kind, fn)`` — ``fn(leaf)`` compares the leaf with the row it committed to and
returns an error message or None; ``register_org_check(fn)`` — ``fn(org)`` runs after the walk, for
properties of the whole history (e.g. the audit trail's gap-free numbering).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from journal.canonical import GENESIS_HASH, leaf_hash
from journal.models import JournalHead, JournalLeaf

_ROW_CHECKS: dict[str, Callable[[JournalLeaf], str | None]] = {}
_ORG_CHECKS: list[Callable[[object], "JournalProblem | None"]] = []


def register_row_check(kind: str, check: Callable[[JournalLeaf], str | None]) -> None:
    _ROW_CHECKS[kind] = check


def register_org_check(check: Callable[[object], "JournalProblem | None"]) -> None:
    if check not in _ORG_CHECKS:
        _ORG_CHECKS.append(check)


@dataclass
class JournalProblem:
    index: int | None
    message: str

    def __str__(self):
        where = f"leaf #{self.index}" if self.index is not None else "journal"
        return f"{where}: {self.message}"


def verify_journal(org) -> JournalProblem | None:
    expected_index = 1
    prev = GENESIS_HASH
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
        prev = leaf.leaf_hash
        expected_index += 1
    for check in _ORG_CHECKS:
        problem = check(org)
        if problem:
            return problem
    head = JournalHead.objects.filter(org=org).first()
    last_index = expected_index - 1
    if head is not None and (head.last_index != last_index or head.last_hash != prev):
        return JournalProblem(None, f"head says #{head.last_index} but the last leaf is #{last_index}: "
                                    "leaves were removed from the end")
    return None
