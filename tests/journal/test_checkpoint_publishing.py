"""Checkpoint publishing with a real Celery worker (and in the embedded mode): a checkpoint covers each
new leaf shortly after it commits, leaves are batched, every checkpoint is consistent with every earlier
one, and the periodic task publishes what a lost message left behind."""

import itertools
import json
import time

import pytest
from django.core.cache import cache

from audit.context import AuditContext
from audit.services import record_event
from csm.celery import app
from journal import merkle, selectors, signing
from journal.models import JournalCheckpoint, JournalHead
from journal.notes import parse_checkpoint, verify_note
from journal.services import latest_checkpoint
from snapshots.models import ReportOutcome, Snapshot
from tenants.choices import Role
from tests.conftest import real_worker, wait_for
from tests.journal.tsa import LocalTSA
from tests.snapshots.conftest import fp, server_report


def head_index(org) -> int:
    return JournalHead.objects.filter(org=org).values_list("last_index", flat=True).first() or 0


def covering(org, index):
    """The latest checkpoint once it covers journal leaf #index (1-based), else None."""
    checkpoint = latest_checkpoint(org)
    return checkpoint if checkpoint is not None and checkpoint.size >= index else None


def change(org, n):
    record_event(AuditContext.system("test"), org, "org.updated", target=("org", org.pk, f"change {n}"))


def assert_checkpoints_consistent(org):
    """Each checkpoint is signed by csm, states the stored root, and is consistent with every earlier one
    (RFC 9162 consistency proofs from the selectors, checked with the client-side math)."""
    checkpoints = list(JournalCheckpoint.objects.filter(org=org).order_by("id"))
    verifier = signing.current_signer().verifier
    for checkpoint in checkpoints:
        body = parse_checkpoint(verify_note(checkpoint.note, verifier))
        assert body.root.hex() == checkpoint.root_hash and body.size == checkpoint.size
    for old, new in itertools.combinations(checkpoints, 2):
        assert old.size <= new.size
        proof = selectors.consistency(org, old.size, new.size)
        assert merkle.verify_consistency(old.size, new.size, bytes.fromhex(old.root_hash),
                                         bytes.fromhex(new.root_hash), proof), (old.size, new.size)
    return checkpoints


@pytest.fixture
def agent(api, org, token_for):
    client = api(token=token_for(org, Role.SNAPSHOTTER))
    assert client.put("/api/v2/environments/acme", {"name": "prod", "type": "server"}, format="json").status_code == 201
    return client


@pytest.mark.django_db(transaction=True)
def test_an_ingested_snapshot_is_covered_by_a_signed_checkpoint_with_a_verifying_inclusion_proof(
        org, agent, celery_worker):
    answer = agent.put("/api/v2/environments/acme/prod/report/server",
                       data=json.dumps(server_report(fp(1), fp(2))).encode(), content_type="application/json")
    assert answer.status_code == 201
    report_id = answer.json()["id"]
    assert wait_for(lambda: ReportOutcome.objects.filter(report_id=report_id).first(), "ingest").status == "snapshot"
    leaf = Snapshot.objects.select_related("leaf").get().leaf
    checkpoint = wait_for(lambda: covering(org, leaf.index), "a checkpoint covering the snapshot")
    proof = selectors.inclusion(org, leaf.index - 1, checkpoint.size)
    root = merkle.root_from_inclusion(leaf.index - 1, checkpoint.size, bytes.fromhex(leaf.leaf_hash), proof)
    assert root == parse_checkpoint(verify_note(checkpoint.note, signing.current_signer().verifier)).root
    assert selectors.entry(org, leaf.index - 1) == leaf.payload.encode()
    assert_checkpoints_consistent(org)


@pytest.mark.django_db(transaction=True)
def test_leaves_within_the_batch_window_share_checkpoints_and_all_checkpoints_are_consistent(
        org, settings, celery_worker):
    settings.CSM_JOURNAL_CHECKPOINT_DELAY_SECONDS = 3
    leaves = 60
    started = time.monotonic()
    for n in range(leaves):
        change(org, n)  # each its own transaction: 60 commits, 60 requests for a checkpoint
    appending = time.monotonic() - started
    wait_for(lambda: covering(org, head_index(org)), "a checkpoint covering every leaf")
    checkpoints = assert_checkpoints_consistent(org)
    # One checkpoint task per org per window (a task that finds leaves committed while it ran asks for
    # the next one; the org's creation asked for one before the loop): the count is bounded by the time
    # spent appending, however many leaves that time held.
    windows = appending / settings.CSM_JOURNAL_CHECKPOINT_DELAY_SECONDS
    assert len(checkpoints) <= windows + 4, (len(checkpoints), appending)
    assert len(checkpoints) < leaves


@pytest.mark.django_db(transaction=True)
def test_the_periodic_task_publishes_for_an_org_whose_scheduling_message_was_lost(
        org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # these commits ask for nothing
        for n in range(5):
            change(org, n)
    app.control.purge()  # and what creating the org asked for is lost with the broker's messages
    cache.delete(f"csm:journal:checkpoint-due:{org.pk}")
    assert latest_checkpoint(org) is None and head_index(org) >= 5
    with real_worker():
        app.send_task("journal.publish_due_checkpoints")  # what beat sends every sweep interval
        checkpoint = wait_for(lambda: covering(org, head_index(org)), "the sweep's checkpoint")
    assert checkpoint.size == head_index(org)
    assert JournalCheckpoint.objects.filter(org=org).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_published_by_the_worker_is_timestamped_by_the_worker(org, settings, tmp_path, celery_worker):
    tsa = LocalTSA(tmp_path)
    try:
        settings.CSM_JOURNAL_TSA_URL = tsa.url
        settings.CSM_JOURNAL_TSA_ALLOW_PRIVATE = True
        change(org, 1)
        index = head_index(org)
        checkpoint = wait_for(lambda: covering(org, index), "a checkpoint")
        wait_for(lambda: JournalCheckpoint.objects.filter(pk=checkpoint.pk, timestamp_token__isnull=False).exists(),
                 "its timestamp")
        checkpoint.refresh_from_db()
        assert tsa.verify(bytes(checkpoint.timestamp_token), checkpoint.note.encode()).returncode == 0
    finally:
        tsa.close()


# --- the embedded mode: tasks run in-process, the checkpoint at commit ----------------------------------

@pytest.mark.django_db
def test_embedded_mode_publishes_the_checkpoint_at_commit(org, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = JournalCheckpoint.objects.filter(org=org).count()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change(org, 1)
        change(org, 2)
    assert JournalCheckpoint.objects.filter(org=org).count() == before  # nothing before the commit
    for callback in callbacks:
        callback()
    checkpoint = latest_checkpoint(org)
    assert checkpoint.size == head_index(org)
    # Two commits, but the second callback finds nothing new: one checkpoint, not one per leaf.
    assert JournalCheckpoint.objects.filter(org=org).count() == before + 1
    assert_checkpoints_consistent(org)
