from django.apps import AppConfig


class CsmConfig(AppConfig):
    """Project-level app: shared templates, static files and template tags."""

    name = "csm"
    verbose_name = "csm"
