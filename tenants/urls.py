"""Web pages of tenants: sign-in/up, password reset, invitations, orgs, members, service accounts,
tokens. Every org page lives under ``/o/<org>/`` and is guarded by ``@org_view``."""

from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.home, name="home"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("signup/finish/<str:secret>/", views.signup_finish, name="signup-finish"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/",
         auth_views.PasswordResetDoneView.as_view(template_name="tenants/auth/password_reset_done.html"),
         name="password-reset-done"),
    path("password-reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(),
         name="password-reset-confirm"),
    path("password-reset/complete/",
         auth_views.PasswordResetCompleteView.as_view(template_name="tenants/auth/password_reset_complete.html"),
         name="password-reset-complete"),
    path("invitations/<str:secret>/", views.invitation_accept, name="invitation-accept"),
    path("orgs/new/", views.org_create, name="org-create"),
    path("account/", views.account_settings, name="account-settings"),
    path("o/<slug:org>/settings/", views.org_settings, name="org-settings"),
    path("o/<slug:org>/settings/update/", views.org_update, name="org-update"),
    path("o/<slug:org>/settings/retention/", views.org_retention, name="org-retention"),
    path("o/<slug:org>/members/", views.member_list, name="member-list"),
    path("o/<slug:org>/members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("o/<slug:org>/members/<int:membership_id>/remove/", views.member_remove, name="member-remove"),
    path("o/<slug:org>/invitations/", views.invitation_create, name="invitation-create"),
    path("o/<slug:org>/invitations/<int:invitation_id>/revoke/", views.invitation_revoke,
         name="invitation-revoke"),
    path("o/<slug:org>/service-accounts/", views.service_account_list, name="service-account-list"),
    path("o/<slug:org>/service-accounts/<int:account_id>/", views.service_account_detail,
         name="service-account-detail"),
    path("o/<slug:org>/service-accounts/<int:account_id>/tokens/", views.service_account_token_create,
         name="service-account-token-create"),
    path("o/<slug:org>/service-accounts/<int:account_id>/deactivate/", views.service_account_deactivate,
         name="service-account-deactivate"),
    path("o/<slug:org>/service-accounts/<int:account_id>/tokens/<int:token_id>/rotate/",
         views.service_account_token_rotate, name="service-account-token-rotate"),
    path("o/<slug:org>/service-accounts/<int:account_id>/tokens/<int:token_id>/revoke/",
         views.service_account_token_revoke, name="service-account-token-revoke"),
    path("o/<slug:org>/tokens/", views.personal_tokens, name="personal-tokens"),
    path("o/<slug:org>/tokens/<int:token_id>/rotate/", views.personal_token_rotate, name="personal-token-rotate"),
    path("o/<slug:org>/tokens/<int:token_id>/revoke/", views.personal_token_revoke, name="personal-token-revoke"),
]
