"""What an erased person leaves in the identity app (audit/erasure.py runs it; docs/operations.md,
"Erasure of a person"): their web sessions, SSO and SCIM identities, second factors and the networks their
tokens were used from are deleted; an environment's reporter list keeps the entry with the name erased.

A SCIM identity deleted here is one the IdP may provision again: deprovision the person at the IdP first."""

from django_otp.plugins.otp_totp.models import TOTPDevice

from identity.models import (
    EnvironmentReporter,
    RecoveryCode,
    ScimUser,
    SsoIdentity,
    TokenNetwork,
    UserSession,
    WebAuthnCredential,
)
from identity.sessions import end_user_sessions
from journal.personal import ERASED
from tenants.models import ApiToken


def erase_identity(ctx, users, email: str) -> dict[str, int]:
    counts = {"sessions ended": 0}
    for user in users:
        counts["sessions ended"] += end_user_sessions(ctx, user, reason="person erased")
    deleted = {
        "web sessions deleted": UserSession.objects.filter(user__in=users),
        "SSO identities deleted": SsoIdentity.objects.filter(user__in=users),
        "SCIM identities deleted": ScimUser.objects.filter(user__in=users),
        "second factors deleted": TOTPDevice.objects.filter(user__in=users),
        "passkeys deleted": WebAuthnCredential.objects.filter(user__in=users),
        "recovery codes deleted": RecoveryCode.objects.filter(user__in=users),
        "token networks deleted": TokenNetwork.objects.filter(token__in=ApiToken.objects.filter(user__in=users)),
    }
    for name, rows in deleted.items():
        counts[name] = rows.delete()[1].get(rows.model._meta.label, 0)
    keys = [f"user:{user.pk}" for user in users]
    keys += [f"token:{pk}" for pk in ApiToken.objects.filter(user__in=users).values_list("pk", flat=True)]
    counts["environment reporters erased"] = (EnvironmentReporter.objects.filter(reporter_key__in=keys)
                                              .update(reporter_label=ERASED))
    return counts
