from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """How people and tokens prove who they are: sign-in (password, OpenID Connect SSO per org, two-factor),
    SCIM provisioning, sessions, and unusual use of credentials (docs/identity.md)."""

    name = "identity"

    def ready(self):
        from identity import signals  # noqa: F401 - connects the session and sign-in signal handlers
        from identity.erasure import erase_identity
        from journal.personal import register_account_eraser

        register_account_eraser(erase_identity)
