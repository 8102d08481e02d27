"""Appending to an org's journal, and publishing its signed checkpoints.

Callers append inside their own transaction, so a row and the leaf that commits to it are written
together or not at all. Appending only numbers the leaf and chains it (under the head's row lock, held
to commit, so leaves commit in index order); the Merkle tree is grown *after* commit, in batches, by
:func:`publish_checkpoint` under the tree's own lock — appends never wait for hashing or signing.

After a commit that appended leaves, :func:`schedule_checkpoint` asks for a checkpoint: with a broker,
one ``journal.checkpoint`` task per org per ``CSM_JOURNAL_CHECKPOINT_DELAY_SECONDS`` (the batch window);
in the embedded default (tasks in-process) at once. A periodic task publishes anything a lost message
left behind.
"""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from journal import merkle, signing
from journal.canonical import GENESIS_HASH, canonical_json, leaf_hash
from journal.models import JournalCheckpoint, JournalHead, JournalLeaf, JournalNode, JournalTree
from journal.notes import Checkpoint

log = logging.getLogger(__name__)

Org = JournalLeaf._meta.get_field("org").related_model

# Leaves read and nodes written per round while growing the tree.
INTEGRATE_CHUNK = 5000


class JournalIncomplete(Exception):
    """Stored hashes the tree needs are missing (a database that lost or had rows removed)."""


def locked_head(org) -> JournalHead:
    """The org's journal head, locked until the transaction ends (created on first use)."""
    head = JournalHead.objects.select_for_update().filter(org=org).first()
    if head is None:
        JournalHead.objects.get_or_create(org=org)
        head = JournalHead.objects.select_for_update().get(org=org)
    return head


def leaf_payload(org, index: int, prev: str, kind: str, data: dict, time) -> bytes:
    return canonical_json({"index": index, "prev": prev, "kind": kind, "org": org.slug, "time": time, "data": data})


@transaction.atomic(savepoint=False)
def append_leaf(org, kind: str, data: dict, object_id: str = "", time=None,
                head: JournalHead | None = None) -> JournalLeaf:
    """Append one leaf to ``org``'s journal (locks the journal head: gap-free, linear chain); a checkpoint
    covering it is published shortly after the transaction commits.

    No savepoint: a failed append dooms the caller's whole transaction, so a record can never commit
    without its leaf — and the head lock, held from here to commit, is not held across the savepoint
    round trips too (bench/journal_throughput.py). ``head``: the org's head, already locked by the caller in
    this transaction (``locked_head``), to spare a second locking read."""
    head = head or locked_head(org)
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
    transaction.on_commit(_checkpoint_on_commit(org.pk), robust=True)
    return leaf


def _checkpoint_on_commit(org_id: int):
    def schedule_checkpoint_on_commit():
        schedule_checkpoint(org_id)

    return schedule_checkpoint_on_commit


# --- the Merkle tree ---------------------------------------------------------------------------------

def reader(org_id: int):
    """A ``merkle.Reader`` over the org's stored hashes: leaf hashes (level 0) from the leaves, the
    rest from ``JournalNode``; one query per kind however many nodes are asked for."""

    def read(nodes: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        out: dict[merkle.Node, bytes] = {}
        by_level: dict[int, list[int]] = {}
        for level, index in nodes:
            by_level.setdefault(level, []).append(index)
        leaves = by_level.pop(0, [])
        for start in range(0, len(leaves), 2000):
            chunk = [i + 1 for i in leaves[start:start + 2000]]
            for index, value in JournalLeaf.objects.filter(org_id=org_id, index__in=chunk).values_list(
                    "index", "leaf_hash"):
                out[(0, index - 1)] = bytes.fromhex(value)
        if by_level:
            query = Q()
            for level, indices in by_level.items():
                query |= Q(level=level, index__in=indices)
            for level, index, value in JournalNode.objects.filter(query, org_id=org_id).values_list(
                    "level", "index", "hash"):
                out[(level, index)] = bytes.fromhex(value)
        missing = [node for node in nodes if node not in out]
        if missing:
            raise JournalIncomplete(f"stored hashes missing for {len(missing)} node(s), e.g. level "
                                    f"{missing[0][0]} index {missing[0][1]}")
        return out

    return read


def _integrate(tree: JournalTree, target: int) -> bytes:
    """Grow ``tree`` to ``target`` leaves, storing every full subtree completed on the way; returns
    the new root."""
    read = reader(tree.org_id)
    size = tree.size
    nodes = merkle.frontier(size)
    stored = read(nodes) if nodes else {}
    frontier = [stored[node] for node in nodes]
    while size < target:
        upto = min(target, size + INTEGRATE_CHUNK)
        rows = list(JournalLeaf.objects.filter(org_id=tree.org_id, index__gt=size, index__lte=upto)
                    .order_by("index").values_list("index", "leaf_hash"))
        if [index for index, _ in rows] != list(range(size + 1, upto + 1)):
            raise JournalIncomplete(f"leaves #{size + 1}..#{upto} are not all there")
        size, frontier, created = merkle.extend(size, frontier, (bytes.fromhex(h) for _, h in rows))
        JournalNode.objects.bulk_create(
            [JournalNode(org_id=tree.org_id, level=level, index=index, hash=value.hex())
             for (level, index), value in created], batch_size=2000)
    return merkle.root_from_frontier(frontier)


def _tree_for_update(org_id: int) -> JournalTree:
    try:
        with transaction.atomic():
            JournalTree.objects.get_or_create(org_id=org_id)
    except IntegrityError:  # created concurrently
        pass
    return JournalTree.objects.select_for_update().get(org_id=org_id)


def origin_for(org) -> str:
    return f"{signing.server_name()}/api/v2/journal/{org.slug}"


def latest_checkpoint(org) -> JournalCheckpoint | None:
    return JournalCheckpoint.objects.filter(org=org).order_by("-id").first()


@transaction.atomic
def publish_checkpoint(org_id: int, *, resign: bool = False) -> JournalCheckpoint | None:
    """Integrate every committed leaf of the org into its Merkle tree and sign a checkpoint of the new
    size. Nothing new (and the latest checkpoint signed by the current key): the latest checkpoint, no
    new row — unless ``resign`` (after a key rotation). Serialised per org by the tree's row lock."""
    org = Org.objects.filter(pk=org_id).first()
    if org is None:  # a task for an org that is gone
        return None
    tree = _tree_for_update(org_id)
    head = JournalHead.objects.filter(org_id=org_id).first()
    target = head.last_index if head else 0
    signer = signing.current_signer()
    latest = latest_checkpoint(org)
    if (latest is not None and latest.size == target == tree.size and not resign
            and latest.key_id == signer.verifier.id_hex):
        return latest
    if target < tree.size:
        raise JournalIncomplete(f"the head (#{target}) is behind the tree ({tree.size} leaves): leaves were removed")
    root = _integrate(tree, target) if target > tree.size or not tree.root_hash else bytes.fromhex(tree.root_hash)
    now = timezone.now()
    tree.origin = tree.origin or origin_for(org)
    tree.size, tree.root_hash, tree.updated_at = target, root.hex(), now
    tree.save(update_fields=["origin", "size", "root_hash", "updated_at"])
    note = signer.sign(Checkpoint(tree.origin, target, root).body())
    checkpoint = JournalCheckpoint.objects.create(
        org=org, size=target, root_hash=root.hex(), note=note, key_name=signer.name,
        key_id=signer.verifier.id_hex, created_at=now)
    if settings.CSM_JOURNAL_TSA_URL:
        transaction.on_commit(lambda: schedule_timestamp(checkpoint.pk), robust=True)
    return checkpoint


def schedule_checkpoint(org_id: int) -> None:
    """Ask for a checkpoint of the org after new leaves committed (see the module docstring)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        publish_checkpoint(org_id)
        return
    delay = settings.CSM_JOURNAL_CHECKPOINT_DELAY_SECONDS
    if cache.add(f"csm:journal:checkpoint-due:{org_id}", 1, timeout=max(delay, 1)):
        from journal.tasks import checkpoint_task

        checkpoint_task.apply_async((org_id,), countdown=delay)


def schedule_timestamp(checkpoint_id: int) -> None:
    """Ask the TSA (``CSM_JOURNAL_TSA_URL``) for a token over a new checkpoint, after it committed: a
    task with retries when there is a broker, in-process in the embedded default (journal/timestamps.py).
    A TSA that is down never holds up or undoes a checkpoint."""
    from journal.tasks import timestamp_checkpoint, timestamp_task

    if settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            timestamp_checkpoint(checkpoint_id)
        except Exception:  # the TSA is optional evidence: log, the periodic task asks again
            log.exception("timestamping checkpoint %s failed", checkpoint_id)
        return
    timestamp_task.apply_async((checkpoint_id,))


def checkpoint_behind_orgs() -> Iterable[int]:
    """Org ids whose head is past their latest tree (a checkpoint is due)."""
    trees = dict(JournalTree.objects.values_list("org_id", "size"))
    for org_id, last_index in JournalHead.objects.values_list("org_id", "last_index"):
        if last_index > trees.get(org_id, -1):
            yield org_id


def checkpoint_now(org) -> JournalCheckpoint:
    """A checkpoint covering every leaf committed so far (for a report that must cite it at once)."""
    return publish_checkpoint(org.pk)
