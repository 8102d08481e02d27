"""Models of the identity app, one module per area (docs/identity.md)."""

from identity.models.activity import EnvironmentReporter, TokenNetwork  # noqa: F401
from identity.models.scim import ScimGroup, ScimGroupMember, ScimSettings, ScimToken, ScimUser  # noqa: F401
from identity.models.sessions import UserSession  # noqa: F401
from identity.models.settings import GroupRoleMapping, OrgIdentitySettings, role_for_groups  # noqa: F401
from identity.models.sso import SsoDomain, SsoIdentity, SsoProvider  # noqa: F401
from identity.models.twofactor import RecoveryCode, WebAuthnCredential  # noqa: F401
