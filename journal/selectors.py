"""Reads of the verifiable journal: checkpoints, entries, proofs, tiles and proof bundles.

Every index here is a 0-based Merkle leaf index (journal leaf #1 is Merkle leaf 0); every size is a
tree size at or below the latest checkpoint's. Bad arguments raise ``csm.errors.ServiceError``
(HTTP 400 naming the parameter). Hashes go out in standard base64, as in checkpoints.
"""

import base64
import struct

from csm.errors import ServiceError
from journal import merkle
from journal.models import JournalCheckpoint, JournalHead, JournalKey, JournalLeaf, JournalNode, JournalTree
from journal.services import latest_checkpoint, reader

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes (or entries) per full tile
BUNDLE_FORMAT = "csm-journal-proofs/1"


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def checkpoint_or_404(org) -> JournalCheckpoint:
    checkpoint = latest_checkpoint(org)
    if checkpoint is None:
        raise ServiceError("this journal has no checkpoint yet", field="", code="not_found")
    return checkpoint


def served_note(checkpoint: JournalCheckpoint) -> str:
    """The checkpoint's signed note with every witness cosignature line appended."""
    lines = [c.line for c in checkpoint.cosignatures.order_by("id")]
    return checkpoint.note + "".join(lines)


def verifier_keys() -> list[str]:
    """The published key history, newest first (signed-note verifier-key format)."""
    return list(JournalKey.objects.order_by("-created_at", "-id").values_list("verifier", flat=True))


def _size_limit(org) -> int:
    checkpoint = latest_checkpoint(org)
    return checkpoint.size if checkpoint else 0


def check_size(org, size: int, field: str = "size") -> int:
    limit = _size_limit(org)
    if size > limit:
        raise ServiceError(f"{field} {size} is larger than the latest checkpoint's tree size {limit}", field=field)
    return size


def entry(org, index: int) -> bytes:
    """The exact leaf bytes hashed for Merkle leaf ``index``."""
    limit = _size_limit(org)
    if not 0 <= index < limit:
        raise ServiceError(f"index {index} is not below the latest checkpoint's tree size {limit}", field="index")
    payload = JournalLeaf.objects.filter(org=org, index=index + 1).values_list("payload", flat=True).first()
    if payload is None:
        raise ServiceError(f"leaf {index} is missing", field="index", code="not_found")
    return payload.encode()


def inclusion(org, index: int, size: int) -> list[bytes]:
    check_size(org, size)
    if not 0 <= index < size:
        raise ServiceError(f"index {index} must be below size {size}", field="index")
    return merkle.inclusion_proof(index, size, reader(org.pk))


def consistency(org, old: int, new: int) -> list[bytes]:
    check_size(org, new, "to")
    if old > new:
        raise ServiceError(f"from {old} is larger than to {new}", field="from")
    if old < 0:
        raise ServiceError("from must not be negative", field="from")
    return merkle.consistency_proof(old, new, reader(org.pk))


# --- tlog-tiles ---------------------------------------------------------------------------------------

def tile(org, level: int, number: int, width: int | None) -> bytes:
    """C2SP tlog-tiles hash tile ``level``/``number``: the hashes of tree level ``level * 8``, nodes
    ``number * 256`` onwards; ``width`` None asks for the full tile. Raises not_found when the latest
    checkpoint does not cover that many hashes."""
    size = _size_limit(org)
    tree_level = level * TILE_HEIGHT
    available = (size >> tree_level) - number * TILE_WIDTH
    wanted = TILE_WIDTH if width is None else width
    if available < wanted or wanted < 1:
        raise ServiceError("no such tile in the published tree", code="not_found")
    first = number * TILE_WIDTH
    if tree_level == 0:
        rows = JournalLeaf.objects.filter(org=org, index__gt=first, index__lte=first + wanted).order_by("index")
        hashes = list(rows.values_list("leaf_hash", flat=True))
    else:
        rows = JournalNode.objects.filter(org=org, level=tree_level, index__gte=first,
                                          index__lt=first + wanted).order_by("index")
        hashes = list(rows.values_list("hash", flat=True))
    if len(hashes) != wanted:
        raise ServiceError("stored hashes of this tile are missing", code="not_found")
    return b"".join(bytes.fromhex(h) for h in hashes)


def entry_bundle(org, number: int, width: int | None) -> bytes:
    """C2SP tlog-tiles entry bundle: each leaf's bytes prefixed by its big-endian 16-bit length.
    Leaves longer than 65535 bytes cannot be bundled (their bundle answers not_found; the entries
    endpoint serves them)."""
    size = _size_limit(org)
    available = size - number * TILE_WIDTH
    wanted = TILE_WIDTH if width is None else width
    if available < wanted or wanted < 1:
        raise ServiceError("no such entry bundle in the published tree", code="not_found")
    first = number * TILE_WIDTH
    payloads = list(JournalLeaf.objects.filter(org=org, index__gt=first, index__lte=first + wanted)
                    .order_by("index").values_list("payload", flat=True))
    out = bytearray()
    for payload in payloads:
        data = payload.encode()
        if len(data) > 0xFFFF:
            raise ServiceError("an entry of this bundle is too long for the tile format", code="not_found")
        out += struct.pack(">H", len(data)) + data
    return bytes(out)


# --- proof bundles (reports, audit packages) ----------------------------------------------------------

def proof_bundle(org, journal_indices, checkpoint: JournalCheckpoint | None = None) -> dict:
    """What an offline verifier needs for the cited records: the checkpoint (signed note, with its
    cosignatures), the verifier keys, and for each cited journal leaf (1-based ``journal_index``) its
    leaf hash and inclusion proof in that checkpoint's tree. One read for every proof."""
    checkpoint = checkpoint or latest_checkpoint(org)
    tree = JournalTree.objects.filter(org=org).first()
    indices = sorted({int(i) for i in journal_indices})
    size = checkpoint.size if checkpoint else 0
    beyond = [i for i in indices if not 1 <= i <= size]
    if beyond:
        raise ServiceError(f"journal leaf #{beyond[0]} is not covered by the checkpoint (size {size})",
                           field="journal_index")
    proofs = merkle.inclusion_proofs([i - 1 for i in indices], size, reader(org.pk)) if indices else {}
    leaves = dict(JournalLeaf.objects.filter(org=org, index__in=indices).values_list("index", "leaf_hash"))
    return {
        "format": BUNDLE_FORMAT,
        "origin": tree.origin if tree else "",
        "checkpoint": served_note(checkpoint) if checkpoint else "",
        "keys": verifier_keys(),
        "tree_size": size,
        "root_hash": b64(bytes.fromhex(checkpoint.root_hash)) if checkpoint else "",
        "proofs": [
            {"journal_index": i, "index": i - 1, "leaf_hash": b64(bytes.fromhex(leaves[i])),
             "hashes": [b64(h) for h in proofs[i - 1]]}
            for i in indices
        ],
    }


# --- backups (reports/backup.py: what a backup's manifest records, and the check after a restore) ------

def journal_state(org) -> dict:
    """The org's journal head (latest leaf index and hash), its latest signed checkpoint and how many
    checkpoints it has: what a backup manifest records, and what a restored database must still hold."""
    head = JournalHead.objects.filter(org=org).values_list("last_index", "last_hash").first()
    checkpoint = latest_checkpoint(org)
    return {
        "head": {"index": head[0], "hash": head[1]} if head else {"index": 0, "hash": ""},
        "checkpoint": None if checkpoint is None else {
            "id": checkpoint.pk, "size": checkpoint.size, "root_hash": checkpoint.root_hash,
            "key_name": checkpoint.key_name, "key_id": checkpoint.key_id,
            "created_at": checkpoint.created_at.isoformat(), "note": checkpoint.note,
        },
        "checkpoints": JournalCheckpoint.objects.filter(org=org).count(),
    }


def leaf_hash_at(org, index: int) -> str | None:
    """The stored hash of the org's journal leaf #``index`` (1-based), or None when there is none."""
    return JournalLeaf.objects.filter(org=org, index=index).values_list("leaf_hash", flat=True).first()


def has_checkpoint(org, size: int, root_hash: str, note: str) -> bool:
    """Whether the org holds a checkpoint of exactly this size, root and signed note."""
    return JournalCheckpoint.objects.filter(org=org, size=size, root_hash=root_hash, note=note).exists()
