from django.urls import path

from audit import views

urlpatterns = [
    path("o/<slug:org>/audit/", views.audit_log, name="audit-log"),
]
