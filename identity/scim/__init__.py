"""SCIM 2.0 provisioning (RFC 7643/7644) at /scim/v2/: an org's identity provider creates, updates, deactivates
and groups the org's members with the org's SCIM token (docs/identity.md, "SCIM")."""
