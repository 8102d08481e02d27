"""Checking a journal proof bundle (``journal.selectors.proof_bundle``) the way an offline verifier does:
the checkpoint's signature by a pinned key, then every cited record's leaf hash and inclusion proof
against the signed root. Shared by the report and the audit-package tests; it returns the problems it
found instead of asserting, so tests can show that a tampered bundle is caught."""

import base64
import hashlib

from journal.merkle import root_from_inclusion
from journal.notes import NoteError, Verifier, parse_checkpoint, verify_note
from journal.selectors import entry


def bundle_problems(bundle: dict, verifier: Verifier, cited: dict[int, str]) -> list[str]:
    """What is wrong with ``bundle`` for the records ``cited`` (1-based journal index -> hex leaf hash);
    empty when everything verifies."""
    try:
        body = verify_note(bundle["checkpoint"], verifier)
        checkpoint = parse_checkpoint(body)
    except NoteError as error:
        return [f"checkpoint: {error}"]
    problems = []
    if checkpoint.origin != bundle["origin"] or checkpoint.size != bundle["tree_size"]:
        problems.append("the bundle's origin or tree size is not the signed checkpoint's")
    if base64.b64decode(bundle["root_hash"]) != checkpoint.root:
        problems.append("the bundle's root hash is not the signed checkpoint's")
    if str(verifier) not in bundle["keys"]:
        problems.append("the signing key is not in the bundle's key history")
    proofs = {proof["journal_index"]: proof for proof in bundle["proofs"]}
    for index, leaf_hex in sorted(cited.items()):
        proof = proofs.get(index)
        if proof is None:
            problems.append(f"#{index}: no proof")
            continue
        leaf = base64.b64decode(proof["leaf_hash"])
        if leaf.hex() != leaf_hex or proof["index"] != index - 1:
            problems.append(f"#{index}: the proof is for another leaf")
            continue
        try:
            root = root_from_inclusion(index - 1, checkpoint.size, leaf, [base64.b64decode(h) for h in proof["hashes"]])
        except ValueError as error:
            problems.append(f"#{index}: {error}")
            continue
        if root != checkpoint.root:
            problems.append(f"#{index}: the inclusion proof does not lead to the signed root")
    return problems


def leaf_bytes_match(org, index: int, leaf_hex: str) -> bool:
    """The journal's stored bytes of leaf ``index`` (1-based) hash to ``leaf_hex`` (RFC 6962 leaf hash)."""
    return hashlib.sha256(b"\x00" + entry(org, index - 1)).hexdigest() == leaf_hex


def tampered_copies(bundle: dict) -> dict[str, dict]:
    """One copy of ``bundle`` per kind of tampering an attacker could try (the bundle must have a proof
    with at least one hash)."""
    import copy

    def flip(b64: str) -> str:
        raw = bytearray(base64.b64decode(b64))
        raw[0] ^= 0x01
        return base64.b64encode(bytes(raw)).decode()

    target = next(p for p in bundle["proofs"] if p["hashes"])
    out = {}
    changed = copy.deepcopy(bundle)
    proof = next(p for p in changed["proofs"] if p["journal_index"] == target["journal_index"])
    proof["hashes"][0] = flip(proof["hashes"][0])
    out["a flipped bit in a proof hash"] = changed
    changed = copy.deepcopy(bundle)
    proof = next(p for p in changed["proofs"] if p["journal_index"] == target["journal_index"])
    proof["hashes"] = proof["hashes"][:-1]
    out["a shortened proof"] = changed
    changed = copy.deepcopy(bundle)
    lines = changed["checkpoint"].split("\n")
    lines[1] = str(int(lines[1]) + 1)  # claim a larger tree under the same signature
    changed["checkpoint"] = "\n".join(lines)
    changed["tree_size"] += 1
    out["a checkpoint whose size was changed"] = changed
    changed = copy.deepcopy(bundle)
    changed["proofs"] = [p for p in changed["proofs"] if p["journal_index"] != target["journal_index"]]
    out["a cited record's proof removed"] = changed
    return out
