"""What ``verify_audit`` checks of the audit trail, registered with the journal (audit/apps.py): each
audit event row still matches the leaf that committed to it, and the events are numbered 1, 2, 3, …
in journal order with no event outside the journal."""

import json

from audit.models import AuditEvent
from journal.canonical import canonical_json
from journal.models import JournalLeaf
from journal.verify import JournalProblem


def check_audit_event(leaf: JournalLeaf) -> str | None:
    event = AuditEvent.objects.filter(leaf_id=leaf.pk).first()
    if event is None:
        return "its audit event row is missing"
    data = json.loads(leaf.payload)["data"]
    if canonical_json(event.leaf_data(data)) != canonical_json(data):
        return f"audit event seq {event.seq} (id {event.pk}) was altered after it was recorded"
    return None


def check_audit_numbering(org) -> JournalProblem | None:
    """The seq committed in each audit leaf runs 1, 2, 3, … in leaf order, and every event has a leaf."""
    expected = 0
    leaves = (JournalLeaf.objects.filter(org=org, kind="audit_event").order_by("index")
              .values_list("index", "payload").iterator(chunk_size=2000))
    for index, payload in leaves:
        expected += 1
        if json.loads(payload)["data"].get("seq") != expected:
            return JournalProblem(index, f"audit event seq {expected} is missing or out of order")
    if AuditEvent.objects.filter(org=org).count() != expected:
        return JournalProblem(None, "an audit event exists that no journal leaf commits to")
    return None
