from django.urls import path

from policies import views

urlpatterns = [
    path("o/<slug:org>/policies/", views.policy_list, name="policy-list"),
    path("o/<slug:org>/policies/new/", views.policy_new, name="policy-new"),
    path("o/<slug:org>/policies/environments/<str:env>/", views.environment_compliance, name="policy-environment"),
    path("o/<slug:org>/policies/environments/<str:env>/attach/", views.environment_attach,
         name="policy-environment-attach"),
    path("o/<slug:org>/policies/environments/<str:env>/allowlist/", views.allowlist_add, name="policy-allowlist"),
    path("o/<slug:org>/policies/environments/<str:env>/allowlist/<int:entry_id>/remove/", views.allowlist_remove,
         name="policy-allowlist-remove"),
    path("o/<slug:org>/policies/environments/<str:env>/snapshots/<int:index>/", views.snapshot_compliance,
         name="policy-snapshot"),
    path("o/<slug:org>/policies/<str:name>/", views.policy_detail, name="policy-detail"),
    path("o/<slug:org>/policies/<str:name>/attach/", views.policy_attach, name="policy-attach"),
    path("o/<slug:org>/policies/<str:name>/detach/", views.policy_detach, name="policy-detach"),
    path("o/<slug:org>/policies/<str:name>/gate/", views.policy_gate, name="policy-gate"),
    path("o/<slug:org>/policies/<str:name>/ungate/", views.policy_ungate, name="policy-ungate"),
]
