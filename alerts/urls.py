from django.urls import path

from alerts import views

urlpatterns = [
    path("o/<slug:org>/alerts/", views.action_list, name="action-list"),
    path("o/<slug:org>/alerts/<int:action_id>/", views.action_detail, name="action-detail"),
    path("o/<slug:org>/alerts/<int:action_id>/test/", views.action_test, name="action-test"),
    path("o/<slug:org>/alerts/<int:action_id>/enable/", views.action_enable, name="action-enable"),
    path("o/<slug:org>/alerts/<int:action_id>/disable/", views.action_disable, name="action-disable"),
    path("o/<slug:org>/alerts/<int:action_id>/delete/", views.action_delete, name="action-delete"),
    path("o/<slug:org>/alerts/<int:action_id>/deliveries/<int:delivery_id>/redeliver/", views.delivery_redeliver,
         name="delivery-redeliver"),
]
