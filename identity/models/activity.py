"""activity models (see docs/identity.md)."""
