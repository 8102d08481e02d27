"""Vulnerability API (``/api/v2/vulnerabilities/{org}``, ``/api/v2/components/{org}``)."""

from django.urls import path

from vulns.api import views

urlpatterns = [
    path("vulnerabilities/<str:org>", views.VulnerabilityListView.as_view(), name="api-vulnerabilities"),
    path("vulnerabilities/<str:org>/<str:vulnerability>", views.VulnerabilityDetailView.as_view(),
         name="api-vulnerability"),
    path("components/<str:org>", views.ComponentView.as_view(), name="api-components"),
]
