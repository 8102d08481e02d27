"""kosli's identity paths, served with kosli's request and answer shapes on csm's own model and services:

- ``/api/v2/service-accounts/{org}[/{name}]``: kosli's service accounts are csm's active
  ``ServiceAccount`` rows, named in the path; kosli's ``privilege`` is csm's role (owner refused);
  ``kosli delete service-account`` deactivates (tokens revoked, history kept, the name freed).
- ``/api/v2/service-accounts/{org}/{name}/api-keys[/{id}[/rotate]]``: an API key is a csm ``ApiToken`` of
  that account; kosli's ``description`` is the token's name, its ``id`` the token's id as a string, times
  are epoch seconds. The secret is in ``key`` of the create and rotate answers only. Rotation keeps csm's
  grace period (the old key works for ``grace_period_hours``, default 24, at most 720).
- ``/api/v2/user/default-org`` (GET) and ``/api/v2/user/{org}`` (PUT): a person's default org.

Permissions are the ones csm's own ``/api/v2/orgs/{org}/service-accounts`` endpoints use
(``tokens.manage``). A refusal kosli's CLI would retry (409 is retried by ``internal/requests``
``customCheckRetry``) is answered 400 here: a duplicate name or a rotated key stays refused however often
it is sent.
"""

from datetime import UTC, datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from csm.api.base import OrgScopedAPIView
from csm.api.errors import ApiError
from csm.errors import ServiceError
from tenants import services
from tenants.api.views import ServiceCallMixin, person
from tenants.choices import Role
from tenants.models import ApiToken, ServiceAccount

PRIVILEGES = [Role.ADMIN, Role.MEMBER, Role.SNAPSHOTTER, Role.READER]
MAX_GRACE_HOURS = services.MAX_ROTATION_GRACE_SECONDS // 3600
DEFAULT_GRACE_HOURS = 24
LATEST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def epoch(moment) -> float | None:
    """Seconds since 1970, what kosli's answers carry for times (``float64`` in the CLI), None for none."""
    return moment.timestamp() if moment is not None else None


def from_epoch(seconds: int | None):
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _privilege(value: str) -> str:
    if value not in PRIVILEGES:
        raise serializers.ValidationError(
            f"Unknown privilege '{value}': use one of {', '.join(PRIVILEGES)} (a service account cannot be an owner).")
    return value


class KosliServiceAccountCreateSerializer(serializers.Serializer):
    """``createServiceAccountPayload`` (cmd/kosli/createServiceAccount.go)."""

    name = serializers.RegexField(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$", max_length=100, error_messages={
        "invalid": "Use 1-50 lowercase letters, digits and hyphens, not starting or ending with a hyphen."})
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    privilege = serializers.CharField(max_length=20, validators=[_privilege])


class KosliServiceAccountUpdateSerializer(serializers.Serializer):
    """The map ``updateServiceAccountOptions.run`` sends: only the flags given."""

    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    privilege = serializers.CharField(max_length=20, required=False, validators=[_privilege])

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"privilege": ["Give a description or a privilege to change."]})
        return attrs


class KosliServiceAccountSerializer(serializers.Serializer):
    """``serviceAccount`` (cmd/kosli/serviceAccount.go)."""

    name = serializers.CharField()
    description = serializers.CharField()
    privilege = serializers.CharField(source="role")
    created_at = serializers.SerializerMethodField()

    def get_created_at(self, account) -> float:
        return epoch(account.created_at)


class KosliApiKeyCreateSerializer(serializers.Serializer):
    """``createApiKeyPayload`` (cmd/kosli/createApiKey.go): the description names the key."""

    description = serializers.CharField(max_length=100, error_messages={
        "blank": "Describe the API key (what uses it); the description names it."})
    expires_at = serializers.IntegerField(min_value=1, max_value=LATEST_EPOCH, required=False, allow_null=True,
                                          default=None, help_text="Epoch seconds; absent: never expires")


class KosliApiKeyRotateSerializer(serializers.Serializer):
    """``rotateApiKeyPayload`` (cmd/kosli/rotateApiKey.go)."""

    grace_period_hours = serializers.IntegerField(min_value=0, max_value=MAX_GRACE_HOURS, required=False,
                                                  allow_null=True, default=None,
                                                  help_text=f"How long the old key keeps working (default "
                                                            f"{DEFAULT_GRACE_HOURS})")
    expires_at = serializers.IntegerField(min_value=1, max_value=LATEST_EPOCH, required=False, allow_null=True,
                                          default=None, help_text="Epoch seconds the new key expires at; absent: "
                                                                  "the old key's lifetime")


class KosliApiKeySerializer(serializers.Serializer):
    """``apiKeyMetadata`` (get, list) and, with ``key``, ``apiKeyResponse`` (create, rotate) in
    cmd/kosli/apiKey.go. ``prefix`` is csm's: the start of the secret, to recognise a key."""

    id = serializers.SerializerMethodField()
    description = serializers.CharField(source="name")
    prefix = serializers.CharField()
    created_at = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()
    last_used_at = serializers.SerializerMethodField()

    def get_id(self, token) -> str:
        return str(token.pk)

    def get_created_at(self, token) -> float:
        return epoch(token.created_at)

    def get_expires_at(self, token) -> float | None:
        return epoch(token.expires_at)

    def get_last_used_at(self, token) -> float | None:
        return epoch(token.last_used_at)


class KosliDefaultOrgSerializer(serializers.Serializer):
    """``defaultOrg`` (cmd/kosli/getDefaultOrg.go)."""

    default_org_name = serializers.CharField(allow_null=True)


def _once(call):
    """Run a service call; a conflict becomes a 400 (kosli's CLI retries a 409 as a lock conflict)."""
    try:
        return call()
    except ServiceError as error:
        if error.status == 409:
            raise ServiceError(error.message, field=error.field, status=400, code=error.code) from None
        raise


class KosliAccountMixin(ServiceCallMixin):
    permission = "tokens.manage"

    def account(self) -> ServiceAccount:
        name = self.kwargs["name"]
        account = ServiceAccount.objects.for_org(self.org).filter(name=name, deactivated_at__isnull=True).first()
        if account is None:
            raise ApiError(404, "not_found", f"Service account '{name}' not found in {self.org.slug}.")
        return account

    def key(self, account: ServiceAccount) -> ApiToken:
        """A live (not revoked, not expired) key of ``account``; a deleted one is gone, as in kosli."""
        key_id = self.kwargs["key_id"]
        token = None
        if key_id.isascii() and key_id.isdigit() and len(key_id) < 19:
            token = ApiToken.objects.for_org(self.org).filter(service_account=account, pk=int(key_id)).first()
        if token is None or not token.is_usable():
            raise ApiError(404, "not_found", f"API key '{key_id}' of service account '{account.name}' not found.")
        return token


class KosliServiceAccountListView(KosliAccountMixin, OrgScopedAPIView):
    """``kosli list service-accounts`` (GET) and ``kosli create service-account`` (POST)."""

    @extend_schema(summary="kosli list service-accounts", responses=KosliServiceAccountSerializer(many=True))
    def get(self, request, org):
        accounts = ServiceAccount.objects.for_org(self.org).filter(deactivated_at__isnull=True).order_by("name")
        return Response(KosliServiceAccountSerializer(accounts, many=True).data)

    @extend_schema(summary="kosli create service-account", request=KosliServiceAccountCreateSerializer,
                   responses={201: KosliServiceAccountSerializer})
    def post(self, request, org):
        data = KosliServiceAccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        account = _once(lambda: self.call(services.create_service_account, self.org, fields["name"],
                                          fields["privilege"], fields["description"], created_by=person(request)))
        return Response(KosliServiceAccountSerializer(account).data, status=status.HTTP_201_CREATED)


class KosliServiceAccountDetailView(KosliAccountMixin, OrgScopedAPIView):
    """``kosli get`` (GET), ``update`` (PATCH) and ``delete service-account`` (DELETE)."""

    @extend_schema(summary="kosli get service-account", responses=KosliServiceAccountSerializer)
    def get(self, request, org, name):
        return Response(KosliServiceAccountSerializer(self.account()).data)

    @extend_schema(summary="kosli update service-account", request=KosliServiceAccountUpdateSerializer,
                   responses=KosliServiceAccountSerializer)
    def patch(self, request, org, name):
        account = self.account()
        data = KosliServiceAccountUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        account = self.call(services.update_service_account, account, description=fields.get("description"),
                            role=fields.get("privilege"))
        return Response(KosliServiceAccountSerializer(account).data)

    @extend_schema(summary="kosli delete service-account: deactivates it (its keys revoked, its history kept)",
                   responses={200: str})
    def delete(self, request, org, name):
        self.call(services.deactivate_service_account, self.account())
        return Response("OK")


class KosliApiKeyListView(KosliAccountMixin, OrgScopedAPIView):
    """``kosli list api-keys`` (GET: live keys only) and ``kosli create api-key`` (POST)."""

    @extend_schema(summary="kosli list api-keys", responses=KosliApiKeySerializer(many=True))
    def get(self, request, org, name):
        account = self.account()
        now = timezone.now()
        keys = [token for token in ApiToken.objects.for_org(self.org).filter(
            service_account=account, revoked_at__isnull=True).order_by("created_at", "pk") if token.is_usable(now)]
        return Response(KosliApiKeySerializer(keys, many=True).data)

    @extend_schema(summary="kosli create api-key", request=KosliApiKeyCreateSerializer,
                   responses={201: KosliApiKeySerializer})
    def post(self, request, org, name):
        account = self.account()
        data = KosliApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        token, secret = _once(lambda: self.call(
            services.create_api_token, self.org, fields["description"], service_account=account,
            expires_at=from_epoch(fields["expires_at"]), created_by=person(request)))
        body = {**KosliApiKeySerializer(token).data, "key": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class KosliApiKeyDetailView(KosliAccountMixin, OrgScopedAPIView):
    """``kosli get api-key`` (GET: metadata) and ``kosli delete api-key`` (DELETE: revokes it now)."""

    @extend_schema(summary="kosli get api-key", responses=KosliApiKeySerializer)
    def get(self, request, org, name, key_id):
        return Response(KosliApiKeySerializer(self.key(self.account())).data)

    @extend_schema(summary="kosli delete api-key: revokes the key now", responses={200: str})
    def delete(self, request, org, name, key_id):
        self.call(services.revoke_api_token, self.key(self.account()))
        return Response("revoked")


class KosliApiKeyRotateView(KosliAccountMixin, OrgScopedAPIView):
    """``kosli rotate api-key``: a new key now; the old one works for the grace period."""

    @extend_schema(summary="kosli rotate api-key", request=KosliApiKeyRotateSerializer,
                   responses={201: KosliApiKeySerializer})
    def post(self, request, org, name, key_id):
        old = self.key(self.account())
        data = KosliApiKeyRotateSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        hours = DEFAULT_GRACE_HOURS if fields["grace_period_hours"] is None else fields["grace_period_hours"]
        extra = {} if fields["expires_at"] is None else {"expires_at": from_epoch(fields["expires_at"])}
        new, secret = _once(lambda: self.call(services.rotate_api_token, old, hours * 3600,
                                              created_by=person(request), **extra))
        old.refresh_from_db(fields=["expires_at"])
        body = {**KosliApiKeySerializer(new).data, "key": secret, "grace_period_expires_at": epoch(old.expires_at)}
        return Response(body, status=status.HTTP_201_CREATED)


def _person_or_refuse(request):
    user = person(request)
    if user is None:
        account = getattr(getattr(request, "auth", None), "service_account", None)
        who = f"the service account '{account.name}'" if account is not None else "a service account"
        raise ApiError(400, "invalid", f"The default org is a person's setting, and this API key belongs to {who}, "
                                       "which has no user. Use a personal API token.")
    return user


class KosliDefaultOrgView(APIView):
    """``kosli get default-org``: the caller's default org, null when none is set (or no longer theirs)."""

    @extend_schema(summary="kosli get default-org", responses=KosliDefaultOrgSerializer)
    def get(self, request):
        org = services.default_org(_person_or_refuse(request))
        return Response({"default_org_name": org.slug if org is not None else None})

    @extend_schema(summary="kosli update default-org default-org", request=None,
                   responses=KosliDefaultOrgSerializer,
                   description="Sets the org whose slug is ``default-org`` (the path ``user/{org}`` names it).")
    def put(self, request):
        """``kosli update default-org default-org``: an org whose slug is ``default-org``."""
        return KosliSetDefaultOrgView.as_view()(request._request, org="default-org")


class KosliSetDefaultOrgView(ServiceCallMixin, OrgScopedAPIView):
    """``kosli update default-org ORG``: PUT /api/v2/user/{org}, no body. A member's own setting: the org
    must be one whose pages the caller's role sees (``org.view``); a personal token reaches its own org."""

    permission = "org.view"

    @extend_schema(summary="kosli update default-org", request=None, responses=KosliDefaultOrgSerializer)
    def put(self, request, org):
        user = _person_or_refuse(request)
        self.call(services.set_default_org, user, self.org)
        return Response({"default_org_name": self.org.slug})
