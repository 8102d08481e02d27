"""Vulnerability web pages."""

from django.urls import path

from vulns import views

urlpatterns = [
    path("o/<slug:org>/vulnerabilities/", views.vulnerability_list, name="vulnerability-list"),
    path("o/<slug:org>/vulnerabilities/<str:vuln_id>/", views.vulnerability_detail, name="vulnerability-detail"),
    path("o/<slug:org>/components/", views.component_search, name="component-search"),
]
