"""Suspending and reactivating a membership (SCIM ``active: false`` / DELETE, an admin): the member keeps
their history but reaches nothing in the org at once — tenants/access.py ignores suspended memberships —
and their web sessions end."""

from django.db import transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from csm.errors import ServiceError
from identity.sessions import end_user_sessions
from tenants.choices import Role
from tenants.models import Membership


def _target(membership: Membership) -> tuple:
    user = membership.user
    return ("membership", membership.pk, user.email or user.get_username())


@transaction.atomic
def suspend_membership(ctx: AuditContext, membership: Membership, *, reason: str) -> Membership:
    membership = Membership.objects.select_for_update().select_related("user", "org").get(pk=membership.pk)
    if membership.suspended_at is not None:
        return membership
    if membership.role == Role.OWNER and not Membership.objects.filter(
            org=membership.org_id, role=Role.OWNER, suspended_at=None).exclude(pk=membership.pk).exists():
        raise ServiceError("The org's last active owner cannot be suspended; make someone else an owner first.",
                           field="active", code="conflict")
    membership.suspended_at = timezone.now()
    membership.suspended_reason = reason[:200]
    membership.save(update_fields=["suspended_at", "suspended_reason"])
    ended = end_user_sessions(ctx, membership.user, reason=reason)
    record_event(ctx, membership.org, AuditAction.MEMBER_SUSPENDED, _target(membership),
                 after={"reason": reason, "sessions_ended": ended})
    return membership


@transaction.atomic
def reactivate_membership(ctx: AuditContext, membership: Membership, *, reason: str) -> Membership:
    membership = Membership.objects.select_for_update().select_related("user", "org").get(pk=membership.pk)
    if membership.suspended_at is None:
        return membership
    membership.suspended_at = None
    membership.suspended_reason = ""
    membership.save(update_fields=["suspended_at", "suspended_reason"])
    record_event(ctx, membership.org, AuditAction.MEMBER_REACTIVATED, _target(membership), after={"reason": reason})
    return membership
