"""scim models (see docs/identity.md)."""
