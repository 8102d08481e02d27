"""Unusual activity: the one place that marks a deviation from an org's normal use of its credentials.

``flag_unusual(ctx, org, kind, summary, details)`` records a ``security.unusual_activity`` audit event (the
audit log shows and filters these) and, once the transaction commits, hands it to the functions registered
in identity.hooks (alerts: ON_UNUSUAL_ACTIVITY). The kinds are fixed (UnusualKind); the detectors that call
it live here too (docs/identity.md, "Unusual activity")."""

import logging

from django.db import models, transaction

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from identity import hooks

logger = logging.getLogger(__name__)


class UnusualKind(models.TextChoices):
    NEW_NETWORK = "token_new_network", "Token used from a network it never used"
    NEW_ENVIRONMENT_REPORTER = "new_environment_reporter", "Environment reported by a new token or account"
    FAILED_SIGN_INS = "failed_sign_ins", "Repeated failed sign-ins"
    OUTSIDE_CHANGE_WINDOW = "outside_change_window", "Change outside the environment's change windows"


def flag_unusual(ctx: AuditContext, org, kind: str, summary: str, details: dict | None = None, target=None):
    """Record the unusual activity as an audit event of ``org`` (inside the caller's transaction) and call
    the registered hooks after commit. Returns the audit event."""
    after = {"kind": str(kind), "summary": summary, **(details or {})}
    event = record_event(ctx, org, AuditAction.UNUSUAL_ACTIVITY, target, after=after)

    def notify():
        for fn in list(hooks.unusual_activity):
            try:
                fn(event)
            except Exception:  # a failing listener must not hide the others
                logger.exception("unusual-activity hook %r failed for audit event %s", fn, event.pk)

    transaction.on_commit(notify)
    return event
