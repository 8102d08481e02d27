"""What an erased person leaves in the alerts app (audit/erasure.py runs it; docs/operations.md, "Erasure of
a person"): an email action addressed to them is disabled and forgets the address, audited as
``action.disabled`` (the address in that event is committed as a keyed hash and erased with the rest)."""

from django.utils import timezone

from alerts.models import Action
from audit.choices import AuditAction
from audit.services import record_event

REASON = "Its recipient was erased (erasure of a person); set a new address to enable it again."


def erase_recipients(ctx, users, email: str) -> dict[str, int]:
    erased = 0
    for action in Action.objects.select_for_update().select_related("org").filter(email__iexact=email).order_by("pk"):
        before = {"email": action.email, "enabled": action.enabled}
        action.email, action.enabled, action.disabled_reason = "", False, REASON
        action.disabled_at = action.updated_at = timezone.now()
        action.save(update_fields=["email", "enabled", "disabled_reason", "disabled_at", "updated_at"])
        record_event(ctx, action.org, AuditAction.ACTION_DISABLED, action, before=before,
                     after={"email": "", "enabled": False, "reason": "recipient erased"})
        erased += 1
    return {"alert actions disabled": erased}
