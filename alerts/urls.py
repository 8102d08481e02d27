from django.urls import path

from alerts import views

urlpatterns = [
    path("o/<slug:org>/alerts/", views.action_list, name="action-list"),
    path("o/<slug:org>/alerts/<int:action_id>/", views.action_detail, name="action-detail"),
]
