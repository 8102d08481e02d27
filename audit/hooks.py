"""What the audit trail plugs into the floors below it (registered in audit/apps.py)."""

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event


def record_cosignature(org, cosignature, actor) -> None:
    """``journal.hooks.cosignature_added``: who handed in a witness's cosignature, in the same
    transaction as the stored cosignature. ``actor`` is the API request (None: a system caller)."""
    ctx = AuditContext.from_request(actor) if actor is not None else AuditContext.system("witness")
    checkpoint = cosignature.checkpoint
    record_event(ctx, org, AuditAction.JOURNAL_COSIGNED,
                 target=("journal_checkpoint", checkpoint.pk, f"checkpoint of tree size {checkpoint.size}"),
                 after={"witness": cosignature.witness, "key_id": cosignature.key_id,
                        "tree_size": checkpoint.size, "root_hash": checkpoint.root_hash,
                        "cosigned_at": cosignature.timestamp})
