from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Orgs, memberships and roles, invitations, service accounts and API tokens."""

    name = "tenants"
