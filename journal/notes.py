"""C2SP signed notes, checkpoints and cosignatures with Ed25519 (no Django, no database).

- ``tlog-checkpoint`` body: ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` (extension lines may follow).
- ``signed-note``: the body, a blank line, then one line per signature
  ``— <key name> <base64(4-byte key id || signature)>``. An Ed25519 key's id is the first 4 bytes of
  ``SHA-256(name || 0x0A || 0x01 || public key)``; its verifier key is
  ``<name>+<hex key id>+<base64(0x01 || public key)>`` and its signer key (the file csm reads)
  ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>`` — the formats of Go's
  ``golang.org/x/mod/sumdb/note``, so keys move between csm and standard tooling.
- ``tlog-cosignature`` (``cosignature/v1``): a witness signs ``cosignature/v1\\ntime <t>\\n`` + the
  checkpoint body; its line carries ``key id || 8-byte big-endian t || signature``, with key id
  ``SHA-256(name || 0x0A || 0x04 || public key)[:4]``.
"""

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ALG_ED25519 = 0x01
ALG_COSIGNATURE = 0x04
DASH = "\u2014"


class NoteError(ValueError):
    """A key, note or signature that does not parse or does not verify."""


def key_id(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def check_name(name: str) -> str:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    name: str
    alg: int
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.alg, self.public)

    @property
    def id_hex(self) -> str:
        return self.id.hex()

    def __str__(self) -> str:
        return f"{self.name}+{self.id_hex}+{base64.b64encode(bytes([self.alg]) + self.public).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier(text: str) -> Verifier:
    """``<name>+<hex id>+<base64(alg || key)>``."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<hex key id>+<base64 key>")
    name, id_hex, b64 = parts
    check_name(name)
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("the verifier key's key is not base64") from None
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE):
        raise NoteError("the verifier key is not an Ed25519 (0x01) or cosignature (0x04) key")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.id_hex != id_hex.lower():
        raise NoteError(f"the verifier key's id {id_hex} does not match its name and key")
    return verifier


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, ALG_ED25519, _public_bytes(self.private.public_key()))

    def __str__(self) -> str:
        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return (f"PRIVATE+KEY+{self.name}+{self.verifier.id_hex}+"
                f"{base64.b64encode(bytes([ALG_ED25519]) + seed).decode()}")

    def sign(self, text: str) -> str:
        """``text`` (the note body, ending in a newline) signed: body, blank line, signature line."""
        body = check_body(text)
        signature = self.private.sign(body.encode())
        return f"{body}\n{DASH} {self.name} {base64.b64encode(self.verifier.id + signature).decode()}\n"


def generate_signer(name: str) -> Signer:
    return Signer(check_name(name), Ed25519PrivateKey.generate())


def parse_signer(text: str) -> Signer:
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("a signer key is PRIVATE+KEY+<name>+<hex key id>+<base64 key>")
    name, id_hex, b64 = parts[2:]
    check_name(name)
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("the signer key is not base64") from None
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("the signer key is not an Ed25519 key")
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier.id_hex != id_hex.lower():
        raise NoteError("the signer key's id does not match its name and key")
    return signer


def check_body(text: str) -> str:
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("a note body ends with a newline and has no blank line")
    return text


@dataclass(frozen=True)
class Signature:
    name: str
    id: bytes
    signature: bytes  # what follows the key id (cosignatures: timestamp || signature)

    @property
    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.id + self.signature).decode()}\n"


def split_note(note: str) -> tuple[str, list[Signature]]:
    """(body, signatures) of a signed note; raises NoteError when it is malformed."""
    body, sep, rest = note.rpartition("\n\n")
    if not sep:
        raise NoteError("a signed note has a blank line between its text and its signatures")
    body += "\n"
    check_body(body)
    if not rest.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    signatures = []
    for line in rest[:-1].split("\n"):
        prefix, _, tail = line.partition(" ")
        name, _, b64 = tail.partition(" ")
        if prefix != DASH or not name or not b64:
            raise NoteError(f"malformed signature line: {line[:80]!r}")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError(f"signature of {name} is not base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature of {name} is too short")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    if not signatures:
        raise NoteError("a signed note has at least one signature")
    return body, signatures


def verify_note(note: str, verifier: Verifier) -> str:
    """The note's body when it carries a valid signature by ``verifier``; NoteError otherwise."""
    body, signatures = split_note(note)
    for sig in signatures:
        if sig.name == verifier.name and sig.id == verifier.id and verifier.alg == ALG_ED25519:
            if verifier.verify(body.encode(), sig.signature):
                return body
            raise NoteError(f"the signature of {verifier.name} does not verify")
    raise NoteError(f"the note carries no signature of {verifier.name} ({verifier.id_hex})")


# --- checkpoints ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(body: str) -> Checkpoint:
    lines = check_body(body)[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a tree size and a root hash line")
    origin, size, root = lines[:3]
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError("the checkpoint's tree size is not a decimal number")
    try:
        raw = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("the checkpoint's root hash is not base64") from None
    if len(raw) != 32:
        raise NoteError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(origin, int(size), raw, tuple(lines[3:]))


# --- cosignatures (tlog-cosignature) -------------------------------------------------------------------

def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def cosign(body: str, name: str, private: Ed25519PrivateKey, timestamp: int) -> Signature:
    public = _public_bytes(private.public_key())
    signature = private.sign(cosigned_message(check_body(body), timestamp))
    return Signature(name, key_id(name, ALG_COSIGNATURE, public), struct.pack(">Q", timestamp) + signature)


def verify_cosignature(body: str, signature: Signature, verifier: Verifier) -> int:
    """The cosignature's timestamp when it is ``verifier``'s valid cosignature of ``body``."""
    if verifier.alg != ALG_COSIGNATURE or signature.name != verifier.name or signature.id != verifier.id:
        raise NoteError(f"not a cosignature of {verifier.name}")
    if len(signature.signature) != 8 + 64:
        raise NoteError(f"the cosignature of {verifier.name} has the wrong length")
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    if not verifier.verify(cosigned_message(body, timestamp), signature.signature[8:]):
        raise NoteError(f"the cosignature of {verifier.name} does not verify")
    return timestamp


def cosignature_verifier(name: str, public: bytes) -> Verifier:
    return Verifier(check_name(name), ALG_COSIGNATURE, public)
