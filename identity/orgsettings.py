"""The org's sign-in security switches (``OrgIdentitySettings``: require SSO, require two-factor): one write
path, so every switch is locked, changed only when it differs, and audited as ``identity.settings_changed``
the same way. The callers (identity/sso.py, identity/twofactor.py) check their own preconditions first."""

from django.db import transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from identity.models import OrgIdentitySettings

SWITCHES = ("require_sso", "require_two_factor")


@transaction.atomic
def set_switch(ctx: AuditContext, org, name: str, value: bool) -> OrgIdentitySettings:
    if name not in SWITCHES:
        raise ValueError(f"unknown identity switch {name!r}")
    row = OrgIdentitySettings.objects.select_for_update().filter(org=org).first() or OrgIdentitySettings(org=org)
    if row.pk is not None and getattr(row, name) == value:
        return row
    before = {name: getattr(row, name)}
    setattr(row, name, value)
    row.updated_at = timezone.now()
    row.save()
    record_event(ctx, org, AuditAction.IDENTITY_SETTINGS_CHANGED, ("org", org.pk, org.slug), before=before,
                 after={name: value})
    return row
