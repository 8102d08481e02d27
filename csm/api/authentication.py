"""API token authentication: ``Authorization: Bearer csm_...`` or HTTP Basic with the token as the
user name and an empty password (older kosli CLIs) or an empty user name and the token as the
password (kosli's flow and trail commands).

A missing header falls through to session authentication (the web app's own API calls); a present but
malformed, unknown, expired or revoked token is a 401 with ``WWW-Authenticate``. A valid token used from
outside its allowed networks, or writing while read-only, is a 403 (tenants.access.check_token_use).
"""

import base64
import binascii

from django.utils import timezone
from rest_framework import authentication, exceptions

from csm.lib.clientip import client_ip
from tenants.access import check_token_use
from tenants.hooks import run_token_used
from tenants.models import ApiToken
from tenants.tokens import hash_token


class ServiceAccountPrincipal:
    """``request.user`` for a service-account token: authenticated, not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, service_account):
        self.service_account = service_account

    def __str__(self):
        return f"service account {self.service_account.name}"

    def get_username(self):
        return self.service_account.name


def token_from_header(header: str) -> str:
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
        user, _, password = decoded.partition(":")
        # Older kosli CLIs send the token as the user name; newer ones (create flow, begin trail) send
        # an empty user name and the token as the password. Exactly one of the two may be set.
        if bool(user) != bool(password):
            return user or password
        raise exceptions.AuthenticationFailed(
            "Basic auth takes the API token as the user name or as the password, with the other empty.")
    raise exceptions.AuthenticationFailed("Malformed Authorization header; use 'Bearer <token>'.")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        raw = token_from_header(header)
        token = (
            ApiToken.objects.select_related("org", "service_account", "user")
            .filter(token_hash=hash_token(raw))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API token has expired.")
        if token.service_account_id and token.service_account.deactivated_at is not None:
            raise exceptions.AuthenticationFailed("The service account of this token is deactivated.")
        if token.user_id and not token.user.is_active:
            raise exceptions.AuthenticationFailed("The user of this token is deactivated.")
        ip = client_ip(request)
        check_token_use(request, token, ip)  # its networks and read-only: a 403, never a 401
        if token.touch_due(now) or (ip and ip != token.last_used_ip):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
            token.last_used_at, token.last_used_ip = now, ip
        run_token_used(request, token, ip)
        principal = ServiceAccountPrincipal(token.service_account) if token.service_account_id else token.user
        return principal, token

    def authenticate_header(self, request):
        return 'Bearer realm="csm"'
