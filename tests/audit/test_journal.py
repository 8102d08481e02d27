"""The journal and audit trail: append-only in the database, hash-chained, tamper-evident."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.models import AuditEvent
from journal.canonical import GENESIS_HASH, canonical_json, leaf_hash
from journal.models import JournalLeaf
from journal.verify import verify_journal
from tests.conftest import tamper

pytestmark = pytest.mark.django_db


def test_leaves_are_numbered_gap_free_and_chained(org):
    leaves = list(JournalLeaf.objects.filter(org=org).order_by("index"))
    assert [leaf.index for leaf in leaves] == list(range(1, len(leaves) + 1))
    prev = GENESIS_HASH
    for leaf in leaves:
        payload = json.loads(leaf.payload)
        assert payload["prev"] == prev == leaf.prev_hash
        assert leaf.leaf_hash == leaf_hash(leaf.payload.encode())
        assert leaf.payload.encode() == canonical_json(payload)
        prev = leaf.leaf_hash
    assert verify_journal(org) is None


def test_canonical_json_rejects_floats():
    with pytest.raises(TypeError, match="floats"):
        canonical_json({"a": 1.5})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET actor_label = 'mallory'",
    "DELETE FROM audit_auditevent",
    "UPDATE audit_journalleaf SET payload = '{}'",
    "DELETE FROM audit_journalleaf",
])
def test_database_rejects_update_and_delete(org, statement):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)




def test_verify_audit_names_an_altered_event(org, capsys):
    event = AuditEvent.objects.filter(org=org).order_by("seq").first()
    call_command("verify_audit", org=org.slug)
    tamper("UPDATE audit_auditevent SET after = %s WHERE id = %s", ['{"role": "reader"}', event.pk])
    with pytest.raises(CommandError):
        call_command("verify_audit", org=org.slug)
    assert f"audit event seq {event.seq}" in capsys.readouterr().err


def test_verify_audit_detects_a_removed_event(org, capsys):
    first = AuditEvent.objects.filter(org=org).order_by("seq").first()
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [first.pk])
    tamper("DELETE FROM audit_journalleaf WHERE id = %s", [first.leaf_id])
    with pytest.raises(CommandError):
        call_command("verify_audit", org=org.slug)
    assert "missing or reordered" in capsys.readouterr().err


def test_verify_audit_detects_reordering(org, capsys):
    a, b = JournalLeaf.objects.filter(org=org).order_by("index")[:2]
    tamper("UPDATE audit_journalleaf SET index = -1 WHERE id = %s", [a.pk])
    tamper("UPDATE audit_journalleaf SET index = %s WHERE id = %s", [a.index, b.pk])
    tamper("UPDATE audit_journalleaf SET index = %s WHERE id = %s", [b.index, a.pk])
    with pytest.raises(CommandError):
        call_command("verify_audit", org=org.slug)
    assert "FAILED" in capsys.readouterr().err


def test_verify_audit_detects_truncation(org, capsys):
    last = JournalLeaf.objects.filter(org=org).order_by("-index").first()
    tamper("DELETE FROM audit_auditevent WHERE leaf_id = %s", [last.pk])
    tamper("DELETE FROM audit_journalleaf WHERE id = %s", [last.pk])
    with pytest.raises(CommandError):
        call_command("verify_audit", org=org.slug)
    assert "removed from the end" in capsys.readouterr().err
