"""sso models (see docs/identity.md)."""
