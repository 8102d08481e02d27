"""The org switch "require two-factor" (docs/identity.md): an org that switched it on keeps its pages closed
to a signed-in member without a second factor — whenever they signed in, also before the switch — until they
enrol one.

Web pages (``/o/<org>/...``, any URL whose pattern takes ``org``) redirect to ``/account/security/`` with a
message naming the org; the API answered from the same browser session gets a 403 JSON error. API tokens
are not sessions and are not affected (a request with an ``Authorization`` header passes through).

It also ends a session of a person with a second factor that never passed it (signed in through Django admin's
own form at ``/admin/login/``, which knows nothing of second factors): the person signs in again at
``/login/``, which asks for the factor, and comes back to the page."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve

from identity.twofactor import has_confirmed_factor, session_skipped_second_factor
from tenants.models import Membership


class RequireTwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._session_applies(request) and session_skipped_second_factor(request):
            logout(request)
            if request.path_info.startswith("/api/"):
                response = JsonResponse({"error": {"code": "not_authenticated", "message": "Sign in again."}},
                                        status=401)
                response["WWW-Authenticate"] = 'Bearer realm="csm"'
                return response
            messages.info(request, "Sign in with your second factor to continue.")
            return redirect_to_login(request.get_full_path())
        org = self._blocking_org(request)
        if org is None:
            return self.get_response(request)
        message = (f"{org.name} requires two-factor authentication. Add an authenticator app or a passkey to "
                   f"open its pages.")
        if request.path_info.startswith("/api/"):
            return JsonResponse({"error": {"code": "two_factor_required", "message": message}}, status=403)
        messages.warning(request, message)
        return redirect("account-security")

    @staticmethod
    def _session_applies(request) -> bool:
        user = getattr(request, "user", None)
        return user is not None and user.is_authenticated and "HTTP_AUTHORIZATION" not in request.META

    def _blocking_org(self, request):
        if not self._session_applies(request):
            return None
        user = request.user
        try:
            slug = resolve(request.path_info, getattr(request, "urlconf", None)).kwargs.get("org")
        except Resolver404:
            return None
        if not slug:
            return None
        membership = (Membership.objects.filter(user=user, org__slug=slug, suspended_at=None,
                                                org__identity_settings__require_two_factor=True)
                      .select_related("org").first())
        if membership is None or has_confirmed_factor(user):
            return None
        return membership.org
