"""journal/notes.py speaks the signed-note formats of Go's ``golang.org/x/mod/sumdb/note``: keys move
between csm and standard transparency-log tooling, and a note signed by Go verifies here (and a note
signed here verifies there: Ed25519 is deterministic, so signing Go's text with Go's key must give Go's
bytes).

Published material used:
- Go's ``sumdb/note/note_test.go`` (PeterNeumann signer/verifier keys and the signed note), quoted by
  cloudflare/azul ``crates/signed_note/benches/benchmark_verify.rs``;
- a real checkpoint of sum.golang.org with its published verifier key, from google/trillian-examples
  ``formats/log/checkpoint_test.go`` (``TestSumDBNoteParsing``), and that file's ``Log`` key pair.
"""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from journal import notes
from journal.notes import NoteError

SUMDB_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_CHECKPOINT = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "\u2014 sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)

NEUMANN_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
NEUMANN_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NEUMANN_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
NEUMANN_NOTE = NEUMANN_TEXT + (
    "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def _public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_a_real_sum_golang_org_checkpoint_verifies_with_its_published_key():
    verifier = notes.parse_verifier(SUMDB_KEY)
    assert (verifier.name, verifier.id_hex) == ("sum.golang.org", "033de0ae")
    checkpoint = notes.parse_checkpoint(notes.verify_note(SUMDB_CHECKPOINT, verifier))
    assert checkpoint.origin == "go.sum database tree"
    assert checkpoint.size == 6476701
    assert base64.b64encode(checkpoint.root).decode() == "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    assert checkpoint.body() == SUMDB_CHECKPOINT.split("\n\n")[0] + "\n"


def test_the_sum_golang_org_checkpoint_with_one_changed_byte_fails():
    verifier = notes.parse_verifier(SUMDB_KEY)
    with pytest.raises(NoteError, match="does not verify"):
        notes.verify_note(SUMDB_CHECKPOINT.replace("6476701", "6476702"), verifier)


def test_a_verifier_key_whose_id_does_not_match_is_refused():
    # One letter of the sum.golang.org key changed: the id no longer matches the name and key.
    with pytest.raises(NoteError, match="does not match its name and key"):
        notes.parse_verifier(SUMDB_KEY.replace("s3Ux18", "s3Ax18"))


def test_go_signer_keys_parse_and_sign_exactly_as_go_does():
    signer = notes.parse_signer(NEUMANN_SIGNER)
    assert str(signer.verifier) == NEUMANN_VERIFIER
    assert str(signer) == NEUMANN_SIGNER
    assert signer.sign(NEUMANN_TEXT) == NEUMANN_NOTE
    assert notes.verify_note(NEUMANN_NOTE, notes.parse_verifier(NEUMANN_VERIFIER)) == NEUMANN_TEXT


def test_a_key_pair_generated_by_go_tooling_matches():
    signer = notes.parse_signer("PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ")
    assert str(signer.verifier) == "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs"


def test_a_note_signed_by_another_key_of_the_same_name_is_refused():
    impostor = notes.Signer("PeterNeumann", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="carries no signature of PeterNeumann"):
        notes.verify_note(impostor.sign(NEUMANN_TEXT), notes.parse_verifier(NEUMANN_VERIFIER))


def test_a_note_with_several_signatures_verifies_with_each_key():
    other = notes.generate_signer("witness.example")
    body = notes.Checkpoint("example.com/log", 3, bytes(32)).body()
    signed = notes.parse_signer(NEUMANN_SIGNER).sign(body)
    both = signed + other.sign(body).split("\n\n")[1]
    assert notes.verify_note(both, notes.parse_verifier(NEUMANN_VERIFIER)) == body
    assert notes.verify_note(both, other.verifier) == body


@pytest.mark.parametrize("note", [
    NEUMANN_TEXT,  # no signature block
    NEUMANN_NOTE.rstrip("\n"),  # no final newline
    NEUMANN_TEXT + "\n\u2014 PeterNeumann !!notbase64!!\n",
    NEUMANN_TEXT + "\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIu=\n",  # ASCII dash
])
def test_malformed_notes_are_refused(note):
    with pytest.raises(NoteError):
        notes.verify_note(note, notes.parse_verifier(NEUMANN_VERIFIER))


@pytest.mark.parametrize(("body", "message"), [
    ("\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "origin"),
    ("log\n03\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "tree size"),
    ("log\n3\nAAAA\n", "32 bytes"),
    ("log\n3\n", "origin, a tree size and a root hash"),
])
def test_malformed_checkpoints_are_refused(body, message):
    with pytest.raises(NoteError, match=message):
        notes.parse_checkpoint(body)


def test_cosignatures_verify_and_bind_their_time():
    private = Ed25519PrivateKey.generate()
    body = notes.Checkpoint("example.com/log", 7, bytes(range(32))).body()
    signature = notes.cosign(body, "witness.example", private, 1_700_000_000)
    public = notes.cosignature_verifier("witness.example", _public(private))
    assert notes.verify_cosignature(body, signature, public) == 1_700_000_000
    moved = notes.Signature(signature.name, signature.id, (1_700_000_001).to_bytes(8, "big") + signature.signature[8:])
    with pytest.raises(NoteError, match="does not verify"):
        notes.verify_cosignature(body, moved, public)
