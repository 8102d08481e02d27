"""Appending to an org's journal. Callers append inside their own transaction, so a row and the leaf
that commits to it are written together or not at all."""

from django.db import transaction
from django.utils import timezone

from journal.canonical import GENESIS_HASH, canonical_json, leaf_hash
from journal.models import JournalHead, JournalLeaf


def locked_head(org) -> JournalHead:
    """The org's journal head, locked until the transaction ends (created on first use)."""
    head = JournalHead.objects.select_for_update().filter(org=org).first()
    if head is None:
        JournalHead.objects.get_or_create(org=org)
        head = JournalHead.objects.select_for_update().get(org=org)
    return head


def leaf_payload(org, index: int, prev: str, kind: str, data: dict, time) -> bytes:
    return canonical_json({"index": index, "prev": prev, "kind": kind, "org": org.slug, "time": time, "data": data})


@transaction.atomic
def append_leaf(org, kind: str, data: dict, object_id: str = "", time=None) -> JournalLeaf:
    """Append one leaf to ``org``'s journal (locks the journal head: gap-free, linear chain)."""
    head = locked_head(org)
    time = time or timezone.now()
    index = head.last_index + 1
    prev = head.last_hash or GENESIS_HASH
    payload = leaf_payload(org, index, prev, kind, data, time)
    leaf = JournalLeaf.objects.create(
        org=org, index=index, kind=kind, object_id=str(object_id), payload=payload.decode(),
        leaf_hash=leaf_hash(payload), prev_hash=prev, created_at=time,
    )
    head.last_index = index
    head.last_hash = leaf.leaf_hash
    head.save(update_fields=["last_index", "last_hash"])
    return leaf
