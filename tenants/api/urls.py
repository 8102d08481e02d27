"""/api/v2/orgs/...: orgs, members, invitations, service accounts, their tokens, personal tokens; and kosli's
paths for the same (/api/v2/service-accounts/{org}/..., /api/v2/user/...: tenants/api/kosli.py)."""

from django.urls import path

from tenants.api import kosli, views

LIST = {"get": "list", "post": "create"}
ITEM = {"get": "retrieve", "delete": "destroy"}

urlpatterns = [
    path("orgs", views.OrgListView.as_view(), name="api-org-list"),
    path("orgs/<slug:org>", views.OrgDetailView.as_view(), name="api-org-detail"),
    path("orgs/<slug:org>/members", views.MemberViewSet.as_view({"get": "list"}), name="api-member-list"),
    path("orgs/<slug:org>/members/<int:member_id>",
         views.MemberViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
         name="api-member-detail"),
    path("orgs/<slug:org>/invitations", views.InvitationViewSet.as_view(LIST), name="api-invitation-list"),
    path("orgs/<slug:org>/invitations/<int:invitation_id>", views.InvitationViewSet.as_view(ITEM),
         name="api-invitation-detail"),
    path("orgs/<slug:org>/service-accounts", views.ServiceAccountViewSet.as_view(LIST),
         name="api-service-account-list"),
    path("orgs/<slug:org>/service-accounts/<int:account_id>",
         views.ServiceAccountViewSet.as_view({**ITEM, "patch": "partial_update"}), name="api-service-account-detail"),
    path("orgs/<slug:org>/service-accounts/<int:account_id>/tokens", views.ServiceAccountTokenViewSet.as_view(LIST),
         name="api-service-account-token-list"),
    path("orgs/<slug:org>/service-accounts/<int:account_id>/tokens/<int:token_id>",
         views.ServiceAccountTokenViewSet.as_view(ITEM), name="api-service-account-token-detail"),
    path("orgs/<slug:org>/service-accounts/<int:account_id>/tokens/<int:token_id>/rotate",
         views.ServiceAccountTokenViewSet.as_view({"post": "rotate"}), name="api-service-account-token-rotate"),
    path("orgs/<slug:org>/tokens", views.PersonalTokenViewSet.as_view(LIST), name="api-personal-token-list"),
    path("orgs/<slug:org>/tokens/<int:token_id>", views.PersonalTokenViewSet.as_view(ITEM),
         name="api-personal-token-detail"),
    path("orgs/<slug:org>/tokens/<int:token_id>/rotate", views.PersonalTokenViewSet.as_view({"post": "rotate"}),
         name="api-personal-token-rotate"),
    # kosli's paths (cmd/kosli/*ServiceAccount*.go, *ApiKey*.go, *DefaultOrg.go)
    path("service-accounts/<slug:org>", kosli.KosliServiceAccountListView.as_view(),
         name="kosli-service-account-list"),
    path("service-accounts/<slug:org>/<str:name>", kosli.KosliServiceAccountDetailView.as_view(),
         name="kosli-service-account-detail"),
    path("service-accounts/<slug:org>/<str:name>/api-keys", kosli.KosliApiKeyListView.as_view(),
         name="kosli-api-key-list"),
    path("service-accounts/<slug:org>/<str:name>/api-keys/<str:key_id>", kosli.KosliApiKeyDetailView.as_view(),
         name="kosli-api-key-detail"),
    path("service-accounts/<slug:org>/<str:name>/api-keys/<str:key_id>/rotate",
         kosli.KosliApiKeyRotateView.as_view(), name="kosli-api-key-rotate"),
    path("user/default-org", kosli.KosliDefaultOrgView.as_view(), name="kosli-default-org"),
    path("user/<slug:org>", kosli.KosliSetDefaultOrgView.as_view(), name="kosli-set-default-org"),
]
