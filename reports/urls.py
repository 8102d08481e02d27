"""Web pages of the top floor: the org dashboard at /o/<org>/ and audit reports under /o/<org>/reports/."""

from django.urls import path

from reports import views

urlpatterns = [
    path("o/<slug:org>/", views.dashboard, name="org-home"),
    path("o/<slug:org>/reports/", views.report_list, name="report-list"),
    path("o/<slug:org>/reports/<uuid:report_id>/status", views.report_status, name="report-status"),
    path("o/<slug:org>/reports/<uuid:report_id>/row", views.report_row, name="report-row"),
    path("o/<slug:org>/reports/<uuid:report_id>/pdf", views.report_download, {"fmt": "pdf"}, name="report-pdf"),
    path("o/<slug:org>/reports/<uuid:report_id>/json", views.report_download, {"fmt": "json"}, name="report-json"),
]
