"""twofactor models (see docs/identity.md)."""
