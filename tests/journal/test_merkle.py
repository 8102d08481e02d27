"""journal/merkle.py against the published RFC 6962 / Certificate Transparency test vectors, a large tree
of a size that is not a power of two, and property tests: the tree math every checkpoint, proof and
offline verification of csm rests on.

Vectors: transparency-dev/merkle ``testonly/constants.go`` (``LeafInputs``, ``NodeHashes``,
``RootHashes``: the leaves and roots of certificate-transparency's ``merkle_tree_test.cc``) and
``testonly/reference_test.go`` (``TestRefInclusionProof``, ``TestRefConsistencyProof``).
"""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journal import merkle
from tests.ct_vectors import CONSISTENCY, INCLUSION, LEAVES, ROOTS


class Tree:
    """An in-memory store of a tree's hashes, shaped like the database's: leaf hashes at level 0 and
    every full subtree ``merkle.extend`` completed, read through a ``merkle.Reader``."""

    def __init__(self, leaf_hashes: list[bytes]):
        self.hashes = {(0, i): h for i, h in enumerate(leaf_hashes)}
        self.size, self.frontier, created = merkle.extend(0, [], leaf_hashes)
        self.hashes.update(created)
        self.reads = 0

    def read(self, nodes):
        self.reads += 1
        return {node: self.hashes[node] for node in nodes}


def reference_root(leaf_hashes: list[bytes]) -> bytes:
    """RFC 6962 2.1 MTH, literally (recursion on the largest power of two below n)."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = 1 << ((len(leaf_hashes) - 1).bit_length() - 1)
    return merkle.node_hash(reference_root(leaf_hashes[:k]), reference_root(leaf_hashes[k:]))


def ct_tree(size: int) -> Tree:
    return Tree([merkle.leaf_hash(data) for data in LEAVES[:size]])


def hexes(hashes):
    return [h.hex() for h in hashes]


# --- the published vectors ----------------------------------------------------------------------------

@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_match_the_ct_vectors(size):
    tree = ct_tree(size)
    assert merkle.root(size, tree.read).hex() == ROOTS[size]
    assert merkle.root_from_frontier(tree.frontier).hex() == ROOTS[size]


def test_the_required_sizes_are_covered():
    assert {0, 1, 2, 3, 7, 8} <= set(ROOTS)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_the_vectors_and_verify(index, size, proof):
    tree = ct_tree(8)
    assert hexes(merkle.inclusion_proof(index, size, tree.read)) == proof
    leaf = merkle.leaf_hash(LEAVES[index])
    assert merkle.root_from_inclusion(index, size, leaf, [bytes.fromhex(h) for h in proof]).hex() == ROOTS[size]


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors_and_verify(old, new, proof):
    tree = ct_tree(8)
    assert hexes(merkle.consistency_proof(old, new, tree.read)) == proof
    assert merkle.verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]),
                                     [bytes.fromhex(h) for h in proof])


def test_bad_arguments_are_refused():
    tree = ct_tree(8)
    with pytest.raises(ValueError, match="not below the tree size"):
        merkle.inclusion_proof(8, 8, tree.read)
    with pytest.raises(ValueError, match="larger than"):
        merkle.consistency_proof(5, 3, tree.read)
    with pytest.raises(ValueError, match="too short"):
        merkle.root_from_inclusion(5, 8, merkle.leaf_hash(LEAVES[5]), [])
    assert not merkle.verify_consistency(6, 8, bytes.fromhex(ROOTS[6]), bytes.fromhex(ROOTS[8]), [])


def test_a_proof_costs_one_read_of_log_n_stored_hashes():
    tree = Tree([merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(1000)])
    tree.reads = 0
    assert len(merkle.plan_inclusion(617, 1000)) <= 2 * 10
    merkle.inclusion_proof(617, 1000, tree.read)
    merkle.consistency_proof(333, 1000, tree.read)
    assert tree.reads == 2


# --- a large tree, not a power of two ----------------------------------------------------------------

LARGE = 1_000_003


@pytest.fixture(scope="module")
def large():
    """1,000,003 leaves hashed once: the tree's hashes are kept from level 8 up (the rest recomputed from
    the leaves on demand, as a tile reader would), so the module stays within a few hundred MB."""
    leaf_hashes = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(LARGE)]
    size, frontier, created = merkle.extend(0, [], leaf_hashes)
    upper = {node: value for node, value in created if node[0] >= 8}

    def read(nodes):
        out = {}
        for level, index in nodes:
            if level >= 8:
                out[(level, index)] = upper[(level, index)]
            else:
                out[(level, index)] = reference_root(leaf_hashes[index << level:(index + 1) << level])
        return out

    return {"leaves": leaf_hashes, "size": size, "frontier": frontier, "read": read,
            "root": reference_root(leaf_hashes)}


@pytest.mark.slow
def test_a_large_tree_matches_the_rfc_definition(large):
    assert large["size"] == LARGE
    assert merkle.root_from_frontier(large["frontier"]) == large["root"]
    assert merkle.root(LARGE, large["read"]) == large["root"]
    assert len(large["frontier"]) == bin(LARGE).count("1")


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 524_287, 524_288, 999_999, LARGE - 1])
def test_a_large_tree_proves_inclusion(large, index):
    proof = merkle.inclusion_proof(index, LARGE, large["read"])
    assert merkle.root_from_inclusion(index, LARGE, large["leaves"][index], proof) == large["root"]


@pytest.mark.slow
@pytest.mark.parametrize("old", [1, 3, 524_288, 999_999, LARGE - 1])
def test_a_large_tree_proves_consistency(large, old):
    old_root = reference_root(large["leaves"][:old])
    proof = merkle.consistency_proof(old, LARGE, large["read"])
    assert merkle.verify_consistency(old, LARGE, old_root, large["root"], proof)
    assert not merkle.verify_consistency(old, LARGE, merkle.leaf_hash(b"other"), large["root"], proof)


# --- properties ----------------------------------------------------------------------------------------

def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(b"leaf %d" % i) for i in range(n)]


def _flip(hashes: list[bytes], which: int, bit: int) -> list[bytes]:
    out = list(hashes)
    value = bytearray(out[which])
    value[bit // 8] ^= 1 << (bit % 8)
    out[which] = bytes(value)
    return out


@st.composite
def index_and_size(draw):
    size = draw(st.integers(min_value=1, max_value=300))
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw):
    new = draw(st.integers(min_value=1, max_value=300))
    return draw(st.integers(min_value=1, max_value=new)), new


@settings(max_examples=200, deadline=None)
@given(index_and_size(), st.integers(min_value=0, max_value=255), st.data())
def test_every_inclusion_proof_verifies_and_any_flipped_bit_fails(args, bit, data):
    index, size = args
    leaves = _leaves(size)
    tree = Tree(leaves)
    root = reference_root(leaves)
    proof = merkle.inclusion_proof(index, size, tree.read)
    assert merkle.root_from_inclusion(index, size, leaves[index], proof) == root
    assert merkle.root_from_inclusion(index, size, _flip([leaves[index]], 0, bit)[0], proof) != root
    if proof:
        which = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        assert merkle.root_from_inclusion(index, size, leaves[index], _flip(proof, which, bit)) != root
    if size > 1:
        other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
        try:
            assert merkle.root_from_inclusion(other, size, leaves[index], proof) != root
        except ValueError:
            pass  # a proof of the wrong length for that index: refused, which is a failure too


@settings(max_examples=200, deadline=None)
@given(two_sizes(), st.integers(min_value=0, max_value=255), st.data())
def test_every_consistency_proof_verifies_and_any_flipped_bit_fails(sizes, bit, data):
    old, new = sizes
    leaves = _leaves(new)
    tree = Tree(leaves)
    old_root, new_root = reference_root(leaves[:old]), reference_root(leaves)
    proof = merkle.consistency_proof(old, new, tree.read)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)
    assert not merkle.verify_consistency(old, new, _flip([old_root], 0, bit)[0], new_root, proof)
    assert not merkle.verify_consistency(old, new, old_root, _flip([new_root], 0, bit)[0], proof)
    if proof:
        which = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        assert not merkle.verify_consistency(old, new, old_root, new_root, _flip(proof, which, bit))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=12))
def test_extend_in_any_chunking_equals_the_bulk_build(chunks):
    leaves = _leaves(sum(chunks))
    bulk = Tree(leaves)
    size, frontier, nodes = 0, [], {}
    for length in chunks:
        new = leaves[size:size + length]
        size, frontier, created = merkle.extend(size, frontier, new)
        for node, value in created:
            assert node not in nodes  # a full subtree is completed exactly once
            nodes[node] = value
    assert size == bulk.size
    assert frontier == bulk.frontier
    assert nodes == {node: value for node, value in bulk.hashes.items() if node[0] >= 1}
    assert merkle.root_from_frontier(frontier) == reference_root(leaves)
