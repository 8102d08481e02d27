"""Appending a leaf inside the caller's transaction: all or nothing, never a record without its leaf."""

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from journal.choices import LeafKind
from journal.models import JournalHead, JournalLeaf
from journal.services import append_leaf

pytestmark = pytest.mark.django_db


def test_a_failed_append_dooms_the_callers_transaction(org):
    """A caller that swallowed the error cannot go on to commit its record without the leaf."""
    before = JournalLeaf.objects.filter(org=org).count()
    with pytest.raises(TransactionManagementError), transaction.atomic():
        try:
            append_leaf(org, LeafKind.AUDIT_EVENT, {"amount": 1.5})  # floats are not canonical JSON
        except TypeError:
            pass
        JournalLeaf.objects.filter(org=org).count()  # the caller carries on as if nothing happened
    assert JournalLeaf.objects.filter(org=org).count() == before


def test_appends_in_one_transaction_are_numbered_and_chained(org):
    head = JournalHead.objects.get(org=org)
    with transaction.atomic():
        first = append_leaf(org, LeafKind.AUDIT_EVENT, {"n": 1})
        second = append_leaf(org, LeafKind.AUDIT_EVENT, {"n": 2})
    assert (first.index, second.index) == (head.last_index + 1, head.last_index + 2)
    assert (first.prev_hash, second.prev_hash) == (head.last_hash, first.leaf_hash)
    head.refresh_from_db()
    assert (head.last_index, head.last_hash) == (second.index, second.leaf_hash)
