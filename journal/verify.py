"""Verification of an org's journal: the chain of leaves, the rows they commit to, and the Merkle tree
and signed checkpoints built over them.

``verify_journal(org)`` walks the leaves in index order and returns the first problem found (or
None): a gap or reordering in the numbering, a leaf whose payload does not hash to its stored hash,
a broken ``prev`` link, a row that no longer matches the leaf that committed to it, or a head that
does not match the last leaf. While it walks it grows the RFC 9162 tree again from the leaf hashes
(``journal.merkle.extend``) and compares every stored ``JournalNode`` with the recomputed one, every
``JournalCheckpoint``'s root with the recomputed root at its size (and its signature with the key
history, ``JournalKey``), and the ``JournalTree`` row with the root at its size. Leaves, nodes and
checkpoints are read in chunks, so the walk is O(n) time with memory bounded by the chunk size.

What this proves is *internal* consistency: someone who can rewrite every row and holds the signing key
can build a new self-consistent history. Detecting that needs a checkpoint kept outside the server
(docs/journal.md: a client's consistency proof from its old checkpoint fails).

The journal knows none of the apps that append to it. Each registers what only it can check:
``register_row_check(kind, fn)`` — ``fn(leaf)`` compares the leaf with the row it committed to and
returns an error message or None; ``register_org_check(fn)`` — ``fn(org)`` runs after the walk, for
properties of the whole history (e.g. the audit trail's gap-free numbering).
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q

from journal import merkle
from journal.canonical import GENESIS_HASH, leaf_hash
from journal.models import JournalCheckpoint, JournalHead, JournalKey, JournalLeaf, JournalNode, JournalTree
from journal.notes import NoteError, Verifier, parse_checkpoint, parse_verifier, verify_note
from journal.personal import cached_keys

_ROW_CHECKS: dict[str, Callable[[JournalLeaf], str | None]] = {}
_ORG_CHECKS: list[Callable[[object], "JournalProblem | None"]] = []

# Leaves hashed into the tree per round (and so the most recomputed nodes held at once).
TREE_CHUNK = 2000


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


def _covered(level: int, index: int) -> str:
    """The leaves a stored node commits to, in both numberings (journal #, 0-based Merkle)."""
    first = index << level
    last = first + (1 << level) - 1
    return f"Merkle node {level}/{index} (Merkle leaves {first}..{last}, journal leaves #{first + 1}..#{last + 1})"


class _TreeCheck:
    """Grows the org's Merkle tree from the walked leaf hashes and compares it with what is stored."""

    def __init__(self, org):
        self.org = org
        self.tree = JournalTree.objects.filter(org=org).first()
        self.stored_size = self.tree.size if self.tree else 0
        self.size = 0
        self.frontier: list[bytes] = []
        self.pending: list[bytes] = []
        self.keys = _key_history()
        self.checkpoints: Iterator[JournalCheckpoint] = (
            JournalCheckpoint.objects.filter(org=org).order_by("size", "id").iterator(chunk_size=500))
        self.next_checkpoint = next(self.checkpoints, None)

    def add(self, leaf: JournalLeaf) -> "JournalProblem | None":
        """Buffer one walked leaf; hash the buffer into the tree at each checkpoint size and chunk end."""
        self.pending.append(bytes.fromhex(leaf.leaf_hash))
        upto = self.size + len(self.pending)
        if len(self.pending) >= TREE_CHUNK or self._due(upto):
            return self.flush()
        return None

    def _due(self, upto: int) -> bool:
        due = self.next_checkpoint is not None and self.next_checkpoint.size == upto
        return due or self.stored_size == upto

    def flush(self) -> "JournalProblem | None":
        problem = self._checkpoints_at_size()  # a checkpoint of size 0 (or of the size already reached)
        if problem or not self.pending:
            return problem
        self.size, self.frontier, created = merkle.extend(self.size, self.frontier, self.pending)
        self.pending = []
        problem = self._compare_nodes(created)
        return problem or self._checkpoints_at_size()

    def _compare_nodes(self, created) -> "JournalProblem | None":
        """Every full subtree completed by this chunk and covered by the stored tree must be stored, equal."""
        wanted = {node: value for node, value in created if (node[1] + 1) << node[0] <= self.stored_size}
        by_level: dict[int, list[int]] = {}
        for level, index in wanted:
            by_level.setdefault(level, []).append(index)
        stored: dict[merkle.Node, str] = {}
        if by_level:
            query = Q()
            for level, indices in by_level.items():
                query |= Q(level=level, index__gte=min(indices), index__lte=max(indices))
            stored = {(level, index): value for level, index, value in JournalNode.objects.filter(
                query, org=self.org).values_list("level", "index", "hash")}
        # The node ending first (then the smallest) is named: it is the tightest range that holds the
        # first leaf whose hash differs from the one the tree was built over.
        for (level, index), value in sorted(wanted.items(),
                                            key=lambda item: ((item[0][1] + 1) << item[0][0], item[0][0])):
            found = stored.get((level, index))
            if found is None:
                return JournalProblem((index << level) + 1, f"{_covered(level, index)} is missing")
            if found != value.hex():
                return JournalProblem((index << level) + 1, f"{_covered(level, index)} does not match the leaves")
        return None

    def _checkpoints_at_size(self) -> "JournalProblem | None":
        root = merkle.root_from_frontier(self.frontier)
        while self.next_checkpoint is not None and self.next_checkpoint.size == self.size:
            problem = self._check_checkpoint(self.next_checkpoint, root)
            if problem:
                return problem
            self.next_checkpoint = next(self.checkpoints, None)
        if self.tree is not None and self.stored_size == self.size and self.tree.root_hash not in ("", root.hex()):
            return JournalProblem(self.size or None, f"the tree row's root at size {self.size} (Merkle index "
                                                     f"{self.size - 1}) does not match the leaves")
        return None

    def _check_checkpoint(self, checkpoint: JournalCheckpoint, root: bytes) -> "JournalProblem | None":
        where = f"checkpoint {checkpoint.pk} (size {checkpoint.size})"
        index = checkpoint.size or None
        if checkpoint.root_hash != root.hex():
            return JournalProblem(index, f"{where} root does not match the leaves: the history up to Merkle "
                                         f"index {checkpoint.size - 1} was rewritten")
        verifier = self.keys.get((checkpoint.key_name, checkpoint.key_id))
        if verifier is None:
            return JournalProblem(index, f"{where} is signed by {checkpoint.key_name} ({checkpoint.key_id}), "
                                         "a key not in the published key history")
        try:
            body = parse_checkpoint(verify_note(checkpoint.note, verifier))
        except NoteError as exc:
            return JournalProblem(index, f"{where} signature: {exc}")
        origin = self.tree.origin if self.tree else ""
        if body.size != checkpoint.size or body.root != root or (origin and body.origin != origin):
            return JournalProblem(index, f"{where} signed note does not say what its row says")
        return None

    def finish(self) -> "JournalProblem | None":
        problem = self.flush()
        if problem:
            return problem
        if self.stored_size > self.size:
            return JournalProblem(None, f"the tree row says {self.stored_size} leaves but there are {self.size}: "
                                        "leaves were removed from the end")
        if self.next_checkpoint is not None:
            return JournalProblem(None, f"checkpoint {self.next_checkpoint.pk} is of size "
                                        f"{self.next_checkpoint.size} but there are {self.size} leaves: "
                                        "leaves were removed from the end")
        return None


def _key_history() -> dict[tuple[str, str], Verifier]:
    keys = {}
    for text in JournalKey.objects.values_list("verifier", flat=True):
        try:
            verifier = parse_verifier(text)
        except NoteError:
            continue  # an unparsable published key verifies nothing; its checkpoints fail by name below
        keys[(verifier.name, verifier.id_hex)] = verifier
    return keys


def _check_leaf(org, leaf: JournalLeaf, expected_index: int, prev: str) -> JournalProblem | None:
    if leaf.index != expected_index:
        return JournalProblem(expected_index, f"missing or reordered: found #{leaf.index} where #{expected_index} "
                                              "was expected")
    if leaf_hash(leaf.payload.encode()) != leaf.leaf_hash:
        return JournalProblem(leaf.index, "payload does not match its leaf hash")
    try:
        payload = json.loads(leaf.payload)
    except ValueError:
        return JournalProblem(leaf.index, "payload is not JSON")
    if payload.get("index") != leaf.index:
        return JournalProblem(leaf.index, f"reordered: the leaf stored here was written as #{payload.get('index')}")
    if payload.get("prev") != prev or leaf.prev_hash != prev:
        return JournalProblem(leaf.index, "chain broken: previous hash does not match")
    if payload.get("kind") != leaf.kind or payload.get("org") != org.slug:
        return JournalProblem(leaf.index, "kind or org in the payload does not match the row")
    check = _ROW_CHECKS.get(leaf.kind)
    if check is not None:
        problem = check(leaf)
        if problem:
            return JournalProblem(leaf.index, problem)
    return None


def verify_journal(org) -> JournalProblem | None:
    """The first problem of ``org``'s journal, or None. Outside a transaction it reads one snapshot of
    the database (REPEATABLE READ, read only), so appends and checkpoints published meanwhile do not
    look like tampering."""
    with cached_keys():  # person keys read once per walk (journal/personal.py)
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return _verify(org)
        return _verify(org)


def _verify(org) -> JournalProblem | None:
    expected_index = 1
    prev = GENESIS_HASH
    tree = _TreeCheck(org)
    leaves = JournalLeaf.objects.filter(org=org).order_by("index").iterator(chunk_size=TREE_CHUNK)
    for leaf in leaves:
        problem = _check_leaf(org, leaf, expected_index, prev)
        if problem:
            # A stored node over the leaves before this one may already be wrong: name the earliest.
            return tree.flush() or problem
        problem = tree.add(leaf)
        if problem:
            return problem
        prev = leaf.leaf_hash
        expected_index += 1
    problem = tree.finish()
    if problem:
        return problem
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
