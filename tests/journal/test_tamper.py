"""Tampering as the database superuser (append-only triggers switched off), against a real history of
snapshots (ingested through the snapshot services) and audit events, with published checkpoints.

Row tampering is named by ``verify_audit`` at the first bad journal / Merkle index. A history rewritten
with a freshly recomputed chain, tree and checkpoint is self-consistent inside the database — what
catches it is a checkpoint a client kept from before: no consistency proof links it to the new one.
"""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.context import AuditContext
from audit.models import AuditEvent
from journal import merkle, selectors
from journal.canonical import canonical_json, leaf_hash
from journal.models import JournalCheckpoint, JournalHead, JournalLeaf, JournalNode
from journal.notes import parse_checkpoint, parse_verifier, verify_note
from journal.services import publish_checkpoint, reader
from journal.verify import verify_journal
from snapshots.models import Snapshot
from snapshots.services.environments import create_or_update_environment
from snapshots.services.ingest import ingest_report
from snapshots.services.reports import accept_report
from tenants.services import create_service_account
from tests.conftest import tamper

pytestmark = pytest.mark.django_db




def _report(*fingerprints) -> bytes:
    return json.dumps({"artifacts": [{"digests": {f"app-{i}": fp}, "creationTimestamp": 1_700_000_000}
                                     for i, fp in enumerate(fingerprints)]}).encode()


def _snapshot(ctx, env, *fingerprints) -> Snapshot:
    report, _ = accept_report(ctx, env, "server", _report(*fingerprints))
    outcome = ingest_report(report.pk)
    return outcome.snapshot


def _audit_events(org, names):
    ctx = AuditContext.system("test")
    for name in names:
        create_service_account(ctx, org, name, "reader")


@pytest.fixture
def history(org):
    """An org with three snapshots, audit events around them and a checkpoint over all of it."""
    ctx = AuditContext.system("agent")
    env, _ = create_or_update_environment(ctx, org, "prod", "server")
    snapshots = [_snapshot(ctx, env, f"{1:064x}"), _snapshot(ctx, env, f"{1:064x}", f"{2:064x}")]
    _audit_events(org, ["ci-a", "ci-b"])
    snapshots.append(_snapshot(ctx, env, f"{3:064x}"))
    _audit_events(org, ["ci-c"])
    checkpoint = publish_checkpoint(org.pk)
    assert checkpoint.size == JournalLeaf.objects.filter(org=org).count() >= 10
    assert verify_journal(org) is None
    return snapshots


def _failure(org, capsys) -> str:
    with pytest.raises(CommandError):
        call_command("verify_audit", org=org.slug)
    return capsys.readouterr().err


def test_untouched_history_verifies_with_its_tree_and_checkpoints(org, history, capsys):
    call_command("verify_audit", org=org.slug)
    out = capsys.readouterr().out
    size = JournalLeaf.objects.filter(org=org).count()
    assert f"acme: ok, journal at #{size}" in out
    assert f"Merkle tree of {size} leaves, 1 checkpoint(s) verified" in out


def test_one_byte_of_a_snapshot_row_is_named_by_its_leaf(org, history, capsys):
    snapshot = history[1]
    tamper("UPDATE snapshots_snapshot SET artifacts_digest = "
            "(CASE WHEN left(artifacts_digest, 1) = '0' THEN '1' ELSE '0' END) || substr(artifacts_digest, 2) "
            "WHERE id = %s", [snapshot.pk])
    err = _failure(org, capsys)
    assert f"acme: FAILED at leaf #{snapshot.leaf.index}: snapshot" in err
    assert verify_journal(org).index == snapshot.leaf.index


def test_one_byte_of_a_leaf_payload_is_named(org, history, capsys):
    leaf = history[2].leaf
    flipped = leaf.payload[:-2] + chr(ord(leaf.payload[-2]) ^ 1) + leaf.payload[-1]
    tamper("UPDATE audit_journalleaf SET payload = %s WHERE id = %s", [flipped, leaf.pk])
    err = _failure(org, capsys)
    assert f"acme: FAILED at leaf #{leaf.index}: payload does not match its leaf hash" in err


def _rechain(org, start: int, change) -> None:
    """Rewrite leaf ``start`` with ``change(payload)`` and recompute the chain (prev, leaf hash) of it and
    every later leaf, and the head: what someone rewriting history inside the database would do."""
    prev = JournalLeaf.objects.get(org=org, index=start - 1).leaf_hash
    for leaf in JournalLeaf.objects.filter(org=org, index__gte=start).order_by("index"):
        payload = json.loads(leaf.payload)
        if leaf.index == start:
            change(payload)
        payload["prev"] = prev
        raw = canonical_json(payload)
        new_hash = leaf_hash(raw)
        tamper("UPDATE audit_journalleaf SET payload = %s, leaf_hash = %s, prev_hash = %s WHERE id = %s",
                [raw.decode(), new_hash, prev, leaf.pk])
        prev = new_hash
    tamper("UPDATE audit_journalhead SET last_hash = %s WHERE org_id = %s", [prev, org.pk])


def test_a_rewritten_chain_inside_the_tree_is_named_by_the_first_stored_node(org, history, capsys):
    # Journal leaf #3 (Merkle leaf 2, even) gets another time; the chain after it is recomputed, so
    # every leaf and row check passes: only the stored Merkle node 1/1 (leaves #3..#4) no longer agrees.
    _rechain(org, 3, lambda payload: payload.update(time="2001-01-01T00:00:00Z"))
    err = _failure(org, capsys)
    assert ("acme: FAILED at leaf #3: Merkle node 1/1 (Merkle leaves 2..3, journal leaves #3..#4) "
            "does not match the leaves") in err


def test_the_last_leaf_rewritten_is_caught_by_the_checkpoint_root(org, history, capsys):
    size = JournalLeaf.objects.filter(org=org).count()
    if size % 2 == 0:  # keep the last leaf outside every stored node: only the checkpoint covers it
        _audit_events(org, ["ci-odd"])
        size += 1
        publish_checkpoint(org.pk)
    _rechain(org, size, lambda payload: payload.update(time="2001-01-01T00:00:00Z"))
    problem = verify_journal(org)
    assert problem.index == size
    assert f"(size {size}) root does not match the leaves" in problem.message


def test_a_stored_node_changed_is_named(org, history):
    node = JournalNode.objects.get(org=org, level=2, index=1)
    tamper("UPDATE journal_journalnode SET hash = %s WHERE id = %s", ["ab" * 32, node.pk])
    problem = verify_journal(org)
    assert problem.index == 5
    assert "Merkle node 2/1 (Merkle leaves 4..7, journal leaves #5..#8) does not match the leaves" in problem.message


def test_a_checkpoint_note_changed_fails_its_signature(org, history):
    checkpoint = JournalCheckpoint.objects.get(org=org)
    note = checkpoint.note.replace(f"\n{checkpoint.size}\n", f"\n{checkpoint.size + 1}\n")
    tamper("UPDATE journal_journalcheckpoint SET note = %s WHERE id = %s", [note, checkpoint.pk])
    problem = verify_journal(org)
    assert problem.index == checkpoint.size
    assert "signature" in problem.message and "does not verify" in problem.message


def test_reordered_leaves_are_named(org, history, capsys):
    snapshot_leaf = history[1].leaf
    after = JournalLeaf.objects.get(org=org, index=snapshot_leaf.index + 1)
    tamper("UPDATE audit_journalleaf SET index = -1 WHERE id = %s", [snapshot_leaf.pk])
    tamper("UPDATE audit_journalleaf SET index = %s WHERE id = %s", [snapshot_leaf.index, after.pk])
    tamper("UPDATE audit_journalleaf SET index = %s WHERE id = %s", [after.index, snapshot_leaf.pk])
    err = _failure(org, capsys)
    assert (f"acme: FAILED at leaf #{snapshot_leaf.index}: reordered: the leaf stored here was written as "
            f"#{after.index}") in err


def test_a_rewritten_tail_is_self_consistent_but_inconsistent_with_a_kept_checkpoint(org, history, capsys):
    kept_size = JournalLeaf.objects.filter(org=org).count()
    _audit_events(org, ["deploy-1", "deploy-2", "deploy-3"])
    client = publish_checkpoint(org.pk)  # what an agent or monitor saw and kept
    assert client.size == kept_size + 3
    key = parse_verifier(selectors.verifier_keys()[0])
    client_checkpoint = parse_checkpoint(verify_note(client.note, key))

    # The operator deletes the three newest leaves and everything built over them: the audit events that
    # point at them, the Merkle nodes, the tree row and the checkpoints that cover them; then resets the
    # head to the last kept leaf so the real services chain new leaves from there.
    tamper("DELETE FROM audit_auditevent WHERE leaf_id IN "
            "(SELECT id FROM audit_journalleaf WHERE org_id = %s AND index > %s)", [org.pk, kept_size])
    tamper("DELETE FROM audit_journalleaf WHERE org_id = %s AND index > %s", [org.pk, kept_size])
    tamper("DELETE FROM journal_journalnode WHERE org_id = %s", [org.pk])
    tamper("DELETE FROM journal_journalcheckpoint WHERE org_id = %s AND size > %s", [org.pk, kept_size])
    tamper("DELETE FROM journal_journaltree WHERE org_id = %s", [org.pk])
    last = JournalLeaf.objects.get(org=org, index=kept_size)
    tamper("UPDATE audit_journalhead SET last_index = %s, last_hash = %s WHERE org_id = %s",
            [kept_size, last.leaf_hash, org.pk])
    _audit_events(org, ["other-1", "other-2", "other-3", "other-4", "other-5"])
    rewritten = publish_checkpoint(org.pk)

    # Inside the database every hash agrees: chain, audit numbering, tree, checkpoints and signatures.
    assert JournalHead.objects.get(org=org).last_index == rewritten.size == kept_size + 5
    assert AuditEvent.objects.filter(org=org, target_label__in=["deploy-1", "deploy-2", "deploy-3"]).count() == 0
    call_command("verify_audit", org=org.slug)
    assert "acme: ok" in capsys.readouterr().out

    # The new checkpoint is properly signed — the key is the operator's — so a signature proves nothing here.
    new_checkpoint = parse_checkpoint(verify_note(selectors.served_note(rewritten), key))
    assert new_checkpoint.origin == client_checkpoint.origin

    # But the client that kept the old checkpoint asks for a consistency proof and it fails.
    proof = selectors.consistency(org, client_checkpoint.size, new_checkpoint.size)
    assert not merkle.verify_consistency(client_checkpoint.size, new_checkpoint.size, client_checkpoint.root,
                                         new_checkpoint.root, proof)
    assert merkle.root(client_checkpoint.size, reader(org.pk)) != client_checkpoint.root

    # Control: the same check passes for an honest history (the checkpoint before the rewritten leaves).
    honest = JournalCheckpoint.objects.get(org=org, size=kept_size)
    proof = selectors.consistency(org, honest.size, new_checkpoint.size)
    assert merkle.verify_consistency(honest.size, new_checkpoint.size, bytes.fromhex(honest.root_hash),
                                     new_checkpoint.root, proof)


def test_verify_audit_outside_a_transaction_reads_one_consistent_snapshot(transactional_db, make_org, capsys):
    """The command's own path (no surrounding transaction): one REPEATABLE READ, READ ONLY snapshot."""
    org = make_org("initech")
    _audit_events(org, ["ci-a", "ci-b"])
    publish_checkpoint(org.pk)
    call_command("verify_audit", org=org.slug)
    assert "initech: ok" in capsys.readouterr().out
    node = JournalNode.objects.filter(org=org).first()
    tamper("UPDATE journal_journalnode SET hash = %s WHERE id = %s", ["cd" * 32, node.pk])
    assert "does not match the leaves" in _failure(org, capsys)
