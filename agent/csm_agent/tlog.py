"""Transparency-log checks for ``csm-verify``: RFC 9162 Merkle proofs and C2SP signed notes, checkpoints
and cosignatures, with the standard library and ``cryptography`` only.

This is deliberately *not* the server's code: an auditor checks csm's journal with an implementation csm
does not share, written from the specifications:

- RFC 9162 2.1.1: leaf hash ``SHA-256(0x00 || leaf bytes)``, interior node ``SHA-256(0x01 || left || right)``,
  empty tree ``SHA-256("")``; 2.1.3.2 verifies an inclusion proof, 2.1.4.2 a consistency proof. Indices are
  0-based Merkle leaf indices (csm's journal leaf #1 is Merkle leaf 0).
- C2SP signed-note: ``text``, a blank line, signature lines ``— <name> <base64(4-byte key id || sig)>``;
  Ed25519 keys (algorithm 0x01) have the id ``SHA-256(name || "\\n" || 0x01 || public key)[:4]`` and the
  verifier-key text ``<name>+<hex id>+<base64(0x01 || public key)>``.
- C2SP tlog-checkpoint: the text is ``<origin>\\n<size>\\n<base64 root>\\n`` plus optional extension lines.
- C2SP tlog-cosignature (``cosignature/v1``, algorithm 0x04): a witness signs
  ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint text; its signature line carries
  ``key id || 8-byte big-endian t || Ed25519 signature``.
"""

import base64
import binascii
import hashlib
import struct
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ALG_ED25519 = 0x01
ALG_COSIGNATURE = 0x04
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space
EMPTY_ROOT = hashlib.sha256(b"").digest()


class InputError(Exception):
    """Input that does not parse: a malformed key, note, proof or file (exit 2)."""


class VerificationFailed(Exception):
    """Input that parses but does not verify: a bad signature, a wrong root, an inconsistent log (exit 1)."""


# --- Merkle hashing and proofs (RFC 9162 2.1) -----------------------------------------------------------

def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(leaf_hashes: list[bytes]) -> bytes:
    """``MTH`` over whole leaf hashes, by RFC 9162's recursive definition (for small trees and tests)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(tree_root(leaf_hashes[:k]), tree_root(leaf_hashes[k:]))


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root the audit ``path`` implies for ``leaf`` at ``index`` in a tree of ``size``
    leaves. Raises VerificationFailed when the path cannot belong to that position."""
    if not 0 <= index < size:
        raise VerificationFailed(f"leaf index {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerificationFailed(f"the inclusion proof of leaf {index} has more hashes than a tree of {size} needs")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationFailed(f"the inclusion proof of leaf {index} has fewer hashes than a tree of {size} needs")
    return r


def check_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, path) != root:
        raise VerificationFailed(f"leaf {index} is not in the tree of size {size}: its proof leads to another root")


def check_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: list[bytes]) -> None:
    """RFC 9162 2.1.4.2: the tree of ``new_size`` leaves with ``new_root`` extends the tree of ``old_size``
    leaves with ``old_root`` (same leaves, in the same order, then more). Raises VerificationFailed."""
    if old_size > new_size:
        raise VerificationFailed(f"the tree shrank from {old_size} to {new_size} leaves")
    if old_size == new_size:
        if path:
            raise VerificationFailed("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise VerificationFailed(f"two different roots for the same tree size {old_size}")
        return
    if old_size == 0:
        if old_root != EMPTY_ROOT:
            raise VerificationFailed("the root of an empty tree is SHA-256 of nothing")
        if path:
            raise VerificationFailed("a consistency proof from the empty tree must be empty")
        return
    if not path:
        raise VerificationFailed(f"empty consistency proof from {old_size} to {new_size}")
    if old_size & (old_size - 1) == 0:  # step 2: a power of two, the old root starts the path
        path = [old_root, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn % 2 == 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationFailed(f"the consistency proof from {old_size} to {new_size} is too long")
        if fn % 2 == 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationFailed(f"the consistency proof from {old_size} to {new_size} is too short")
    if fr != old_root:
        raise VerificationFailed(f"the tree of {new_size} leaves does not contain the tree of {old_size} leaves "
                                 "this verifier holds (its first leaves differ: history was rewritten)")
    if sr != new_root:
        raise VerificationFailed(f"the consistency proof from {old_size} to {new_size} does not lead to the new root: "
                                 "the newer tree does not extend the older one (history was rewritten, or the "
                                 "proof is not for these checkpoints)")


# --- keys ---------------------------------------------------------------------------------------------

def key_id(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def _check_name(name: str) -> str:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise InputError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is not base64") from None


@dataclass(frozen=True)
class PublicKey:
    """A verifier key: an Ed25519 note key (alg 0x01) or a witness cosignature key (alg 0x04)."""

    name: str
    alg: int
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.alg, self.public)

    def __str__(self) -> str:
        return f"{self.name}+{self.id.hex()}+{base64.b64encode(bytes([self.alg]) + self.public).decode()}"

    def valid(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_public_key(text: str) -> PublicKey:
    parts = text.strip().split("+", 2)  # names and hex ids have no '+'; base64 may
    if len(parts) != 3:
        raise InputError(f"{text.strip()[:60]!r} is not a verifier key (<name>+<hex key id>+<base64 key>)")
    name, id_hex, b64 = parts
    raw = _b64(b64, f"the key of verifier key {name!r}")
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE):
        raise InputError(f"verifier key {name!r} is not an Ed25519 (0x01) or cosignature (0x04) key")
    key = PublicKey(_check_name(name), raw[0], raw[1:])
    if key.id.hex() != id_hex.lower():
        raise InputError(f"verifier key {name!r}: the key id {id_hex} does not match its name and key")
    return key


@dataclass(frozen=True)
class WitnessKey:
    """A witness's private cosigning key (``PRIVATE+KEY+<name>+<hex id>+<base64(0x04 || seed)>``)."""

    name: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.name, ALG_COSIGNATURE, self.private.public_key().public_bytes(Encoding.Raw,
                                                                                            PublicFormat.Raw))

    def __str__(self) -> str:
        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return (f"PRIVATE+KEY+{self.name}+{self.public.id.hex()}+"
                f"{base64.b64encode(bytes([ALG_COSIGNATURE]) + seed).decode()}")

    def cosign(self, body: str, timestamp: int | None = None) -> str:
        """The ``cosignature/v1`` signature line of a checkpoint ``body`` (its text, ending in a newline)."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        signature = self.private.sign(cosigned_message(body, timestamp))
        raw = self.public.id + struct.pack(">Q", timestamp) + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(raw).decode()}\n"


def new_witness_key(name: str) -> WitnessKey:
    return WitnessKey(_check_name(name), Ed25519PrivateKey.generate())


def parse_witness_key(text: str) -> WitnessKey:
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise InputError("a witness key is PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 || seed)>")
    name, id_hex, b64 = parts[2:]
    raw = _b64(b64, "the witness key")
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE:
        raise InputError("the witness key is not a cosignature (0x04) key")
    key = WitnessKey(_check_name(name), Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if key.public.id.hex() != id_hex.lower():
        raise InputError("the witness key's id does not match its name and key")
    return key


# --- signed notes and checkpoints ------------------------------------------------------------------------

@dataclass(frozen=True)
class SignatureLine:
    name: str
    id: bytes
    signature: bytes  # after the key id (for a cosignature: timestamp || signature)


def split_note(note: str) -> tuple[str, list[SignatureLine]]:
    """A signed note's text (ending in a newline) and its signature lines; InputError when malformed."""
    if not note.endswith("\n"):
        raise InputError("a signed note ends with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise InputError("a signed note has a blank line between its text and its signatures")
    text, lines = note[:cut + 1], note[cut + 2:-1].split("\n")
    if any(c < " " and c != "\n" for c in text):
        raise InputError("a signed note's text has control characters")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise InputError(f"not a signature line: {line[:80]!r}")
        name, _, b64 = line[len(SIGNATURE_PREFIX):].partition(" ")
        raw = _b64(b64, f"the signature of {name!r}")
        if not name or len(raw) < 5:
            raise InputError(f"malformed signature line: {line[:80]!r}")
        signatures.append(SignatureLine(name, raw[:4], raw[4:]))
    return text, signatures


def verify_note(note: str, keys: list[PublicKey]) -> tuple[str, PublicKey]:
    """The note's text and the pinned Ed25519 key that signed it. A signature by a pinned key that does not
    verify, or no signature by any pinned key, raises VerificationFailed."""
    text, signatures = split_note(note)
    for key in keys:
        if key.alg != ALG_ED25519:
            continue
        for sig in signatures:
            if sig.name == key.name and sig.id == key.id:
                if not key.valid(text.encode(), sig.signature):
                    raise VerificationFailed(f"the signature of {key.name} on this checkpoint does not verify "
                                             "(the checkpoint was altered or forged)")
                return text, key
    names = ", ".join(f"{s.name} ({s.id.hex()})" for s in signatures)
    pinned = ", ".join(f"{k.name} ({k.id.hex()})" for k in keys if k.alg == ALG_ED25519) or "none"
    raise VerificationFailed(f"no signature by a pinned key: the note is signed by {names}; pinned: {pinned}")


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def verify_cosignatures(note: str, witnesses: list[PublicKey]) -> dict[str, int]:
    """``{witness verifier key: timestamp}`` of every listed witness whose cosignature on the note's text
    verifies. A cosignature by a listed witness that does not verify raises VerificationFailed."""
    text, signatures = split_note(note)
    good: dict[str, int] = {}
    for key in witnesses:
        for sig in signatures:
            if sig.name != key.name or sig.id != key.id:
                continue
            if len(sig.signature) != 8 + 64:
                raise VerificationFailed(f"the cosignature of witness {key.name} has the wrong length")
            (timestamp,) = struct.unpack(">Q", sig.signature[:8])
            if not key.valid(cosigned_message(text, timestamp), sig.signature[8:]):
                raise VerificationFailed(f"the cosignature of witness {key.name} does not verify")
            good[str(key)] = timestamp
    return good


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode()


def parse_checkpoint(text: str) -> Checkpoint:
    """The tlog-checkpoint in a note's text."""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) < 3:
        raise InputError("a checkpoint has an origin line, a tree size line and a root hash line")
    origin, size, root = lines[:3]
    if not origin:
        raise InputError("the checkpoint's origin line is empty")
    if not size.isdecimal() or not size.isascii() or (len(size) > 1 and size[0] == "0"):
        raise InputError(f"the checkpoint's tree size {size[:30]!r} is not a decimal number")
    raw = _b64(root, "the checkpoint's root hash")
    if len(raw) != 32:
        raise InputError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(origin, int(size), raw, text)


def verified_checkpoint(note: str, keys: list[PublicKey], origin: str | None = None) -> tuple[Checkpoint, PublicKey]:
    """A checkpoint signed by one of the pinned ``keys`` (and with ``origin``, when given)."""
    text, key = verify_note(note, keys)
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationFailed(f"the checkpoint is for the log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint, key


def decode_hashes(values, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise InputError(f"{what}: hashes must be a list of base64 strings")
    out = []
    for value in values:
        raw = _b64(value, f"{what}: a hash") if isinstance(value, str) else b""
        if len(raw) != 32:
            raise InputError(f"{what}: every hash is 32 bytes in base64")
        out.append(raw)
    return out
