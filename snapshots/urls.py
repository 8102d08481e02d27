"""Web pages of the snapshot journal, under ``/o/<org>/``."""

from django.urls import path

from snapshots import views

urlpatterns = [
    path("o/<slug:org>/environments/", views.environment_list, name="environment-list"),
    path("o/<slug:org>/environments/<str:env>/", views.environment_detail, name="environment-detail"),
    path("o/<slug:org>/environments/<str:env>/events/", views.environment_events, name="environment-events"),
    path("o/<slug:org>/environments/<str:env>/authorization/", views.environment_authorization,
         name="environment-authorization"),
    path("o/<slug:org>/environments/<str:env>/rename/", views.environment_rename, name="environment-rename"),
    path("o/<slug:org>/environments/<str:env>/change-windows/", views.environment_change_windows,
         name="environment-change-windows"),
    path("o/<slug:org>/environments/<str:env>/members/", views.environment_members, name="environment-members"),
    path("o/<slug:org>/environments/<str:env>/snapshots/<int:index>/", views.snapshot_detail,
         name="snapshot-detail"),
    path("o/<slug:org>/diff/", views.diff, name="snapshot-diff"),
    # The kosli CLI's own links (``get trail`` markdown: ``{host}/{org}/environments/{env}/{snapshot index}``)
    path("<slug:org>/environments/<str:env>/<int:index>", views.kosli_snapshot_link, name="kosli-snapshot-link"),
    path("o/<slug:org>/search/", views.search, name="search"),
]
