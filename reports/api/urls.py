"""/api/v2/orgs/{org}/reports: request, list and poll audit reports; download PDF and JSON."""

from django.urls import path

from reports.api import views

urlpatterns = [
    path("orgs/<slug:org>/reports", views.ReportViewSet.as_view({"get": "list", "post": "create"}),
         name="api-report-list"),
    path("orgs/<slug:org>/reports/<uuid:report_id>", views.ReportViewSet.as_view({"get": "retrieve"}),
         name="api-report-detail"),
    path("orgs/<slug:org>/reports/<uuid:report_id>/pdf", views.ReportDownloadView.as_view(fmt="pdf"),
         name="api-report-pdf"),
    path("orgs/<slug:org>/reports/<uuid:report_id>/json", views.ReportDownloadView.as_view(fmt="json"),
         name="api-report-json"),
]
