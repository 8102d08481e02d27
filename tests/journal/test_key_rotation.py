"""Rotating the journal signing key (``manage.py rotate_journal_key``) and publishing checkpoints on demand
(``manage.py journal_checkpoint``): old checkpoints keep verifying with the old public key, new ones
with the new, and the key history lists both, newest first."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.context import AuditContext
from journal import selectors, signing
from journal.models import JournalCheckpoint, JournalHead, JournalKey
from journal.notes import NoteError, parse_checkpoint, parse_signer, parse_verifier, verify_note
from journal.services import publish_checkpoint
from journal.verify import verify_journal
from tenants.services import create_service_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def key_file(settings, tmp_path):
    """A key file of this test's own: rotation replaces the file, which must not leak into other tests."""
    settings.CSM_JOURNAL_KEY_FILE = tmp_path / "journal-signing.key"
    settings.CSM_JOURNAL_GENERATE_KEY = True
    settings.CSM_JOURNAL_KEY_NAME = "csm.test/key-1"
    yield settings.CSM_JOURNAL_KEY_FILE
    signing._cache.pop(str(settings.CSM_JOURNAL_KEY_FILE), None)


def _verifier(name):
    return parse_verifier(JournalKey.objects.get(name=name).verifier)


def test_rotation_keeps_old_checkpoints_verifiable_and_signs_new_ones_with_the_new_key(
        org, other_org, key_file, capsys):
    old_acme, old_globex = publish_checkpoint(org.pk), publish_checkpoint(other_org.pk)
    assert old_acme.key_name == "csm.test/key-1"

    call_command("rotate_journal_key", name="csm.test/key-2")
    out = capsys.readouterr().out
    new_key = _verifier("csm.test/key-2")
    assert f"new journal key: {new_key}" in out
    assert "re-signed the latest checkpoint of 2 org(s)" in out
    assert parse_signer(key_file.read_text()).verifier == new_key  # the file holds the new private key
    assert (key_file.stat().st_mode & 0o777) == 0o600

    old_key = _verifier("csm.test/key-1")
    for old, the_org in ((old_acme, org), (old_globex, other_org)):
        new = JournalCheckpoint.objects.filter(org=the_org).order_by("-id").first()
        assert (new.key_name, new.size, new.root_hash) == ("csm.test/key-2", old.size, old.root_hash)
        assert parse_checkpoint(verify_note(old.note, old_key)).size == old.size
        assert parse_checkpoint(verify_note(new.note, new_key)).size == new.size
        with pytest.raises(NoteError):
            verify_note(new.note, old_key)
        with pytest.raises(NoteError):
            verify_note(old.note, new_key)
        assert verify_journal(the_org) is None  # both checkpoints check out against the key history

    assert selectors.verifier_keys() == [str(new_key), str(old_key)]

    # The next ordinary checkpoint is signed by the new key too.
    create_service_account(AuditContext.system("test"), org, "after-rotation", "reader")
    assert publish_checkpoint(org.pk).key_name == "csm.test/key-2"


def test_a_reused_key_name_is_refused(org, key_file):
    publish_checkpoint(org.pk)
    before = key_file.read_text()
    with pytest.raises(CommandError, match="a key named csm.test/key-1 was used before"):
        call_command("rotate_journal_key", name="csm.test/key-1")
    assert key_file.read_text() == before  # the signing key is unchanged
    with pytest.raises(CommandError, match="without spaces"):
        call_command("rotate_journal_key", name="two words")


def test_rotation_without_a_name_gets_a_dated_one(org):
    publish_checkpoint(org.pk)
    call_command("rotate_journal_key")
    newest = JournalKey.objects.order_by("-created_at", "-id").first()
    assert "/journal-key-" in newest.name
    assert JournalCheckpoint.objects.filter(org=org).order_by("-id").first().key_name == newest.name


def test_journal_checkpoint_publishes_every_committed_leaf_now(org, other_org, capsys):
    create_service_account(AuditContext.system("test"), org, "ci", "reader")
    call_command("journal_checkpoint", org="acme")
    head = JournalHead.objects.get(org=org)
    checkpoint = JournalCheckpoint.objects.get(org=org)
    assert checkpoint.size == head.last_index
    out = capsys.readouterr().out
    assert f"acme: checkpoint of {head.last_index} leaves" in out and "signed by csm.test/key-1" in out
    assert not JournalCheckpoint.objects.filter(org=other_org).exists()

    call_command("journal_checkpoint")  # every org; nothing new in acme: the same checkpoint again
    assert JournalCheckpoint.objects.filter(org=org).count() == 1
    assert JournalCheckpoint.objects.filter(org=other_org).count() == 1
    assert "globex: checkpoint of" in capsys.readouterr().out


def test_journal_checkpoint_of_an_unknown_org_is_refused():
    with pytest.raises(CommandError, match="no org with the slug 'nope'"):
        call_command("journal_checkpoint", org="nope")
