"""Models of the identity app, one module per area (docs/identity.md)."""

from identity.models.settings import OrgIdentitySettings  # noqa: F401
