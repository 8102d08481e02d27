"""sessions models (see docs/identity.md)."""
