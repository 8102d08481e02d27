from django.urls import path

from audit.api import views

urlpatterns = [
    path("orgs/<slug:org>/audit-events", views.AuditEventViewSet.as_view({"get": "list"}), name="api-audit-list"),
    path("orgs/<slug:org>/audit-events/<int:event_id>", views.AuditEventViewSet.as_view({"get": "retrieve"}),
         name="api-audit-detail"),
]
