from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Orgs, memberships and roles, invitations, service accounts and API tokens."""

    name = "tenants"

    def ready(self):
        from journal.personal import register_account_eraser
        from tenants.services import erase_memberships

        register_account_eraser(erase_memberships)
