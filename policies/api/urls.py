from django.urls import path

from policies.api import views

urlpatterns = [
    path("policies/<str:org>", views.PolicyListView.as_view(), name="api-policy-list"),
    path("policies/<str:org>/<str:name>", views.PolicyDetailView.as_view(), name="api-policy-detail"),
    path("policies/<str:org>/inputs/<str:sha256>", views.PolicyInputView.as_view(), name="api-policy-input"),
    path("policies/<str:org>/decisions/<str:flow>/<str:trail>", views.TrailDecisionsView.as_view(),
         name="api-trail-decisions"),
    path("flows/<str:org>/<str:flow>/policies", views.FlowPoliciesView.as_view(), name="api-flow-policies"),
    path("environments/<str:org>/<str:env>/policies", views.EnvironmentPoliciesView.as_view(),
         name="api-environment-policies"),
    path("allowlists/<str:org>/<str:env>", views.AllowlistView.as_view(), name="api-allowlist"),
    path("allowlists/<str:org>/<str:env>/<int:entry_id>", views.AllowlistEntryView.as_view(),
         name="api-allowlist-entry"),
    path("asserts/<str:org>/fingerprint/<str:fingerprint>", views.AssertFingerprintView.as_view(),
         name="api-assert-fingerprint"),
    path("orgs/<str:org>/environments/<str:env>/compliance", views.ComplianceHistoryView.as_view(),
         name="api-environment-compliance"),
]
