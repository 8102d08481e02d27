"""csm-verify's own RFC 9162 Merkle code: the RFC 6962 / Certificate Transparency test vectors, proofs
the server's independent implementation (journal.merkle) produces for random trees, and flipped bits.

An auditor's verdict rests on these functions: a wrong one either accepts a rewritten log or rejects
an honest one."""

import hashlib

import pytest
from csm_agent import tlog
from hypothesis import given, settings
from hypothesis import strategies as st

from journal import merkle as server_merkle
from tests.ct_vectors import CONSISTENCY, INCLUSION, LEAVES, ROOTS


def hashes(size):
    return [tlog.leaf_hash(leaf) for leaf in LEAVES[:size]]


def root(size):
    return bytes.fromhex(ROOTS[size])


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_tree_roots_match_the_rfc6962_vectors(size):
    assert tlog.tree_root(hashes(size)).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_vectors_verify_and_a_wrong_leaf_or_position_does_not(index, size, path):
    path = [bytes.fromhex(h) for h in path]
    leaf = hashes(size)[index]
    tlog.check_inclusion(index, size, leaf, path, root(size))
    with pytest.raises(tlog.VerificationFailed):
        tlog.check_inclusion(index, size, tlog.leaf_hash(b"not the leaf"), path, root(size))
    if size > 1:
        with pytest.raises(tlog.VerificationFailed):
            tlog.check_inclusion((index + 1) % size, size, leaf, path, root(size))
        with pytest.raises(tlog.VerificationFailed):  # a path one hash short
            tlog.check_inclusion(index, size, leaf, path[:-1], root(size))
    with pytest.raises(tlog.VerificationFailed):  # one hash too many
        tlog.check_inclusion(index, size, leaf, [*path, leaf], root(size))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors_verify_and_a_rewritten_old_tree_does_not(old, new, proof):
    proof = [bytes.fromhex(h) for h in proof]
    tlog.check_consistency(old, new, root(old), root(new), proof)
    forged_old = tlog.tree_root([tlog.leaf_hash(b"rewritten"), *hashes(old)[1:]])
    with pytest.raises(tlog.VerificationFailed):
        tlog.check_consistency(old, new, forged_old, root(new), proof)


def test_the_edges_of_consistency():
    tlog.check_consistency(0, 8, tlog.EMPTY_ROOT, root(8), [])  # everything extends the empty tree
    with pytest.raises(tlog.VerificationFailed, match="shrank"):
        tlog.check_consistency(8, 7, root(8), root(7), [])
    with pytest.raises(tlog.VerificationFailed, match="different roots"):
        tlog.check_consistency(7, 7, root(7), root(6), [])
    with pytest.raises(tlog.VerificationFailed, match="empty consistency proof"):
        tlog.check_consistency(3, 8, root(3), root(8), [])
    with pytest.raises(tlog.VerificationFailed):
        tlog.check_inclusion(8, 8, hashes(8)[0], [], root(8))


def _server_tree(count):
    """Leaf hashes and the server's stored full subtrees for ``count`` leaves (journal.merkle.extend)."""
    leaves = [hashlib.sha256(b"\x00" + i.to_bytes(4, "big")).digest() for i in range(count)]
    _, _, created = server_merkle.extend(0, [], leaves)
    store = {(0, i): h for i, h in enumerate(leaves)} | dict(created)
    return leaves, lambda nodes: {node: store[node] for node in nodes}


def _flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=300))
def test_every_server_inclusion_proof_verifies_and_any_flipped_bit_fails(data, size):
    leaves, read = _server_tree(size)
    index = data.draw(st.integers(0, size - 1))
    expected = tlog.tree_root(leaves)
    assert server_merkle.root(size, read) == expected
    path = server_merkle.inclusion_proof(index, size, read)
    tlog.check_inclusion(index, size, leaves[index], path, expected)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(tlog.VerificationFailed):
        tlog.check_inclusion(index, size, _flip(leaves[index], bit), path, expected)
    with pytest.raises(tlog.VerificationFailed):
        tlog.check_inclusion(index, size, leaves[index], path, _flip(expected, bit))
    if path:
        spot = data.draw(st.integers(0, len(path) - 1))
        with pytest.raises(tlog.VerificationFailed):
            tlog.check_inclusion(index, size, leaves[index], [*path[:spot], _flip(path[spot], bit),
                                                              *path[spot + 1:]], expected)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), new=st.integers(min_value=1, max_value=300))
def test_every_server_consistency_proof_verifies_and_any_flipped_bit_fails(data, new):
    leaves, read = _server_tree(new)
    old = data.draw(st.integers(1, new))
    old_root, new_root = tlog.tree_root(leaves[:old]), tlog.tree_root(leaves)
    proof = server_merkle.consistency_proof(old, new, read)
    tlog.check_consistency(old, new, old_root, new_root, proof)
    bit = data.draw(st.integers(0, 255))
    with pytest.raises(tlog.VerificationFailed):
        tlog.check_consistency(old, new, _flip(old_root, bit), new_root, proof)
    with pytest.raises(tlog.VerificationFailed):
        tlog.check_consistency(old, new, old_root, _flip(new_root, bit), proof)
    if proof:
        spot = data.draw(st.integers(0, len(proof) - 1))
        with pytest.raises(tlog.VerificationFailed):
            tlog.check_consistency(old, new, old_root, new_root,
                                   [*proof[:spot], _flip(proof[spot], bit), *proof[spot + 1:]])


def test_a_large_non_power_of_two_tree():
    size = 100_003
    leaves, read = _server_tree(size)
    expected = tlog.tree_root(leaves)
    for index in (0, 65_535, 65_536, 99_999, size - 1):
        tlog.check_inclusion(index, size, leaves[index], server_merkle.inclusion_proof(index, size, read), expected)
    for old in (1, 65_536, 77_777, size - 1):
        tlog.check_consistency(old, size, tlog.tree_root(leaves[:old]), expected,
                               server_merkle.consistency_proof(old, size, read))
