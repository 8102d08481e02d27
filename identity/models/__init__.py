"""Models of the identity app, one module per area (docs/identity.md)."""

from identity.models.settings import GroupRoleMapping, OrgIdentitySettings, role_for_groups  # noqa: F401
from identity.models.twofactor import RecoveryCode, WebAuthnCredential  # noqa: F401
