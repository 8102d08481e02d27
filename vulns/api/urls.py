"""Vulnerability API (``/api/v2/vulnerabilities/{org}``, ``/api/v2/components/{org}``)."""

urlpatterns: list = []
