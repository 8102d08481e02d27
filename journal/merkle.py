"""RFC 6962 / RFC 9162 Merkle tree arithmetic over an org's journal (no Django, no database).

Indices here are 0-based Merkle leaf indices: journal leaf #1 is Merkle leaf 0. The tree over ``n``
leaves is RFC 9162's ``MTH(D[n])``: leaf hash ``SHA-256(0x00 || leaf bytes)``, interior node
``SHA-256(0x01 || left || right)``, the empty tree ``SHA-256("")``.

**Stored hashes.** Only *full* subtrees are stored, addressed ``(level, index)``: the subtree of
``2**level`` leaves starting at leaf ``index * 2**level`` (level 0 is the leaf hashes). Once stored a
full subtree never changes, whatever the tree grows to. Every other subtree hash (the right edge of a
tree whose size is not a power of two) is computed from at most ``log2(n)`` stored ones.

**Reads.** Functions that need stored hashes take ``read(nodes) -> {(level, index): bytes}``, called
once with every node they need, so a root or a proof costs one round trip of O(log n) rows (a batch of
proofs: one round trip for all of them). ``plan_*`` functions return those nodes without reading.
"""

import hashlib
from collections.abc import Callable, Iterable

Node = tuple[int, int]
Reader = Callable[[list[Node]], dict[Node, bytes]]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_full(start: int, end: int) -> bool:
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


def subtree_nodes(start: int, end: int) -> list[Node]:
    """The stored full subtrees whose hashes make ``MTH(D[start:end])`` (left to right). ``[start, end)``
    must be a subtree of the RFC recursion (its left parts are always aligned)."""
    if end <= start:
        raise ValueError(f"empty range [{start}, {end})")
    out: list[Node] = []
    while not _is_full(start, end):
        k = _split(end - start)
        if start % k:
            raise ValueError(f"[{start}, {end}) is not a subtree of the RFC 9162 recursion")
        out.append(((k.bit_length() - 1), start // k))
        start += k
    size = end - start
    out.append((size.bit_length() - 1, start // size))
    return out


def subtree_hash(start: int, end: int, hashes: dict[Node, bytes]) -> bytes:
    """``MTH(D[start:end])`` from the stored hashes named by :func:`subtree_nodes`."""
    nodes = subtree_nodes(start, end)
    result = hashes[nodes[-1]]
    for node in reversed(nodes[:-1]):
        result = node_hash(hashes[node], result)
    return result


def frontier(size: int) -> list[Node]:
    """The full subtrees that decompose a tree of ``size`` leaves, largest (leftmost) first."""
    return subtree_nodes(0, size) if size else []


# --- inclusion and consistency (RFC 9162 2.1.3 and 2.1.4) -------------------------------------------

def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes form ``PATH(index, D[size])``, from the leaf up."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes form ``PROOF(old, D[new])`` (RFC 9162 2.1.4.1), in proof order."""
    ranges: list[tuple[int, int]] = []
    start, end, complete = 0, new, True
    m = old
    while True:
        if m == end - start:
            if not complete:
                ranges.append((start, end))
            break
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    return ranges[::-1]


def check_inclusion_args(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not below the tree size {size}")


def check_consistency_args(old: int, new: int) -> None:
    if not 0 <= old <= new:
        raise ValueError(f"from {old} is larger than to {new}")


def _plan(ranges: Iterable[tuple[int, int]]) -> list[Node]:
    seen: dict[Node, None] = {}
    for start, end in ranges:
        for node in subtree_nodes(start, end):
            seen[node] = None
    return list(seen)


def plan_inclusion(index: int, size: int) -> list[Node]:
    check_inclusion_args(index, size)
    return _plan(_inclusion_ranges(index, size))


def plan_consistency(old: int, new: int) -> list[Node]:
    check_consistency_args(old, new)
    return _plan(_consistency_ranges(old, new)) if 0 < old < new else []


def inclusion_proof(index: int, size: int, read: Reader) -> list[bytes]:
    """``PATH(index, D[size])``: the audit path of leaf ``index`` in the tree of ``size`` leaves."""
    return inclusion_proofs([index], size, read)[index]


def inclusion_proofs(indices: Iterable[int], size: int, read: Reader) -> dict[int, list[bytes]]:
    """Audit paths of many leaves in one tree, with one read for all of them."""
    wanted = {}
    for index in indices:
        check_inclusion_args(index, size)
        wanted[index] = _inclusion_ranges(index, size)
    hashes = read(_plan(r for ranges in wanted.values() for r in ranges))
    return {index: [subtree_hash(start, end, hashes) for start, end in ranges] for index, ranges in wanted.items()}


def consistency_proof(old: int, new: int, read: Reader) -> list[bytes]:
    """``PROOF(old, D[new])``; empty when ``old`` is 0 or equals ``new`` (nothing to prove)."""
    check_consistency_args(old, new)
    if old == 0 or old == new:
        return []
    ranges = _consistency_ranges(old, new)
    hashes = read(_plan(ranges))
    return [subtree_hash(start, end, hashes) for start, end in ranges]


def root(size: int, read: Reader) -> bytes:
    """``MTH(D[size])``."""
    if size == 0:
        return EMPTY_ROOT
    return subtree_hash(0, size, read(frontier(size)))


# --- growing the tree ---------------------------------------------------------------------------------

def extend(size: int, frontier_hashes: list[bytes], new_leaves: Iterable[bytes]):
    """Append leaf hashes to a tree of ``size`` leaves whose :func:`frontier` hashes are given.

    Returns ``(new_size, new_frontier_hashes, new_nodes)`` where ``new_nodes`` is every full subtree
    completed by the new leaves, as ``((level, index), hash)`` with level >= 1 (level 0, the leaf hashes,
    are the leaves themselves). Cost: O(1) amortised per leaf.
    """
    levels = [level for level, _ in frontier(size)]
    if len(levels) != len(frontier_hashes):
        raise ValueError(f"a tree of {size} leaves has {len(levels)} frontier hashes, not {len(frontier_hashes)}")
    stack = list(zip(levels, frontier_hashes, strict=True))
    created: list[tuple[Node, bytes]] = []
    m = size
    for leaf in new_leaves:
        stack.append((0, leaf))
        while len(stack) >= 2 and stack[-2][0] == stack[-1][0]:
            (level, left), (_, right) = stack[-2], stack[-1]
            merged = node_hash(left, right)
            stack[-2:] = [(level + 1, merged)]
            created.append(((level + 1, m >> (level + 1)), merged))
        m += 1
    return m, [h for _, h in stack], created


def root_from_frontier(frontier_hashes: list[bytes]) -> bytes:
    if not frontier_hashes:
        return EMPTY_ROOT
    result = frontier_hashes[-1]
    for left in reversed(frontier_hashes[:-1]):
        result = node_hash(left, result)
    return result


# --- verification (what a client does; csm-verify carries its own copy, by design) ---------------------

def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that ``proof`` implies for leaf hash ``leaf`` at ``index`` (raises
    ValueError when the proof has the wrong length)."""
    check_inclusion_args(index, size)
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ValueError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion proof is too short")
    return result


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 2.1.4.2."""
    check_consistency_args(old, new)
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof:
        return False
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        proof = [old_root, *proof]
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
