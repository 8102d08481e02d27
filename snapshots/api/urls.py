"""Snapshot journal API: the exact paths the kosli CLI calls (trailing slash optional)."""

from django.urls import re_path

from snapshots.api import views

ORG = r"(?P<org>[^/]+)"
ENV = r"(?P<env>[^/]+)"

urlpatterns = [
    re_path(rf"^environments/{ORG}/?$", views.EnvironmentListView.as_view(), name="api-environment-list"),
    re_path(rf"^environments/{ORG}/{ENV}/?$", views.EnvironmentDetailView.as_view(), name="api-environment-detail"),
    re_path(rf"^environments/{ORG}/{ENV}/archive/?$", views.EnvironmentArchiveView.as_view(),
            name="api-environment-archive"),
    re_path(rf"^environments/{ORG}/{ENV}/unarchive/?$", views.EnvironmentUnarchiveView.as_view(),
            name="api-environment-unarchive"),
    re_path(rf"^environments/{ORG}/{ENV}/rename/?$", views.EnvironmentRenameView.as_view(),
            name="api-environment-rename"),
    re_path(rf"^environments/{ORG}/{ENV}/join/?$", views.EnvironmentJoinView.as_view(),
            name="api-environment-join"),
    re_path(rf"^environments/{ORG}/{ENV}/report/(?P<report_type>[^/]+)/?$", views.ReportView.as_view(),
            name="api-environment-report"),
    re_path(rf"^environments/{ORG}/{ENV}/reports/(?P<report_id>[0-9]+)/?$", views.ReportStatusView.as_view(),
            name="api-report-status"),
    re_path(rf"^environments/{ORG}/{ENV}/events/?$", views.EventListView.as_view(), name="api-environment-events"),
    re_path(rf"^snapshots/{ORG}/{ENV}/?$", views.SnapshotListView.as_view(), name="api-snapshot-list"),
    re_path(rf"^snapshots/{ORG}/{ENV}/(?P<snappish>.+?)/?$", views.SnapshotDetailView.as_view(),
            name="api-snapshot-detail"),
    re_path(rf"^env-diff/{ORG}/?$", views.EnvDiffView.as_view(), name="api-env-diff"),
    re_path(rf"^search/{ORG}/sha/(?P<prefix>[^/]+)/?$", views.SearchView.as_view(), name="api-search-sha"),
]
