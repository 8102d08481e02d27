from django.urls import path

from alerts.api import views

urlpatterns = [
    path("orgs/<str:org>/actions", views.ActionListView.as_view(), name="api-action-list"),
    path("orgs/<str:org>/actions/<int:action_id>", views.ActionDetailView.as_view(), name="api-action-detail"),
    path("orgs/<str:org>/actions/<int:action_id>/deliveries", views.ActionDeliveriesView.as_view(),
         name="api-action-deliveries"),
    path("orgs/<str:org>/actions/<int:action_id>/test", views.ActionTestView.as_view(), name="api-action-test"),
    path("orgs/<str:org>/deliveries/<int:delivery_id>/redeliver", views.RedeliverView.as_view(),
         name="api-delivery-redeliver"),
]
