"""REST API of tenants under /api/v2/orgs/...: orgs, members, invitations, service accounts and their
tokens, personal tokens. Scoping and permissions come from csm/api/base.py; writes go through
tenants/services.py, whose refusals become API errors here."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from audit.context import AuditContext
from csm.api.base import OrgScopedAPIView, OrgScopedViewSet
from csm.api.errors import ApiError
from tenants import services
from tenants.api import serializers as s
from tenants.models import ApiToken, Invitation, Membership, Org, ServiceAccount


def person(request):
    """The Django user behind the request, or None for a service-account token."""
    user = request.user
    return user if getattr(user, "pk", None) is not None else None


class ServiceCallMixin:
    def ctx(self) -> AuditContext:
        return AuditContext.from_request(self.request)

    def call(self, function, *args, **kwargs):
        return function(self.ctx(), *args, **kwargs)


class OrgListView(ListAPIView):
    """The orgs of the caller: every org of a person, or the one org of a token."""

    serializer_class = s.OrgSerializer

    def get_queryset(self):
        token = self.request.auth
        if isinstance(token, ApiToken):
            return Org.objects.filter(pk=token.org_id)
        return Org.objects.filter(memberships__user=self.request.user,
                                  memberships__suspended_at=None).order_by("slug")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        token = self.request.auth
        if isinstance(token, ApiToken) and token.service_account_id:
            context["roles"] = {token.org_id: token.service_account.role}
        elif person(self.request) is not None:
            context["roles"] = dict(Membership.objects.filter(user=self.request.user, suspended_at=None)
                                    .values_list("org_id", "role"))
        return context


class OrgDetailView(ServiceCallMixin, OrgScopedAPIView):
    permission = {"GET": "org.view", "default": "org.manage"}
    error_statuses = (409,)

    def _body(self):
        return s.OrgSerializer(self.org, context={"roles": {self.org.pk: self.org_access.role}}).data

    @extend_schema(responses=s.OrgSerializer)
    def get(self, request, org):
        return Response(self._body())

    @extend_schema(request=s.OrgUpdateSerializer, responses=s.OrgSerializer)
    def patch(self, request, org):
        data = s.OrgUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        retention = {field: values[field] for field in services.RETENTION_FIELDS if field in values}
        with transaction.atomic(durable=True):  # name and retention together, or nothing
            if "name" in values:
                self.org = self.call(services.update_org, self.org, name=values["name"])
            if retention:
                self.org = self.call(services.set_retention, self.org, **retention)
        return Response(self._body())


class MemberViewSet(ServiceCallMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Membership.objects.all()
    serializer_class = s.MemberSerializer
    lookup_url_kwarg = "member_id"
    permission = {"list": "org.view", "retrieve": "org.view", "default": "members.manage"}
    error_statuses = (409,)

    def get_queryset(self):
        return super().get_queryset().select_related("user").order_by("user__email")

    @extend_schema(request=s.MemberUpdateSerializer, responses=s.MemberSerializer)
    def partial_update(self, request, *args, **kwargs):
        data = s.MemberUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = self.call(services.change_role, self.get_object(), data.validated_data["role"],
                               actor_role=self.org_access.role)
        return Response(s.MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        self.call(services.remove_member, self.get_object(), actor_role=self.org_access.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(ServiceCallMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = Invitation.objects.all()
    serializer_class = s.InvitationSerializer
    lookup_url_kwarg = "invitation_id"
    permission = "members.manage"
    error_statuses = (409,)

    def get_queryset(self):
        return super().get_queryset().select_related("invited_by")

    @extend_schema(request=s.InvitationCreateSerializer, responses={201: s.InvitationCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = s.InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, secret = self.call(services.invite_member, self.org, data.validated_data["email"],
                                       data.validated_data["role"], actor_role=self.org_access.role,
                                       invited_by=person(request))
        invitation.accept_url = services.invitation_url(secret)
        return Response(s.InvitationCreatedSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        self.call(services.revoke_invitation, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceAccountViewSet(ServiceCallMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = ServiceAccount.objects.all()
    serializer_class = s.ServiceAccountSerializer
    lookup_url_kwarg = "account_id"
    permission = "tokens.manage"
    error_statuses = (409,)

    @extend_schema(request=s.ServiceAccountCreateSerializer, responses={201: s.ServiceAccountSerializer})
    def create(self, request, *args, **kwargs):
        data = s.ServiceAccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = self.call(services.create_service_account, self.org, data.validated_data["name"],
                            data.validated_data["role"], data.validated_data["description"],
                            created_by=person(request))
        return Response(s.ServiceAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ServiceAccountUpdateSerializer, responses=s.ServiceAccountSerializer)
    def partial_update(self, request, *args, **kwargs):
        data = s.ServiceAccountUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = self.call(services.update_service_account, self.get_object(), **data.validated_data)
        return Response(s.ServiceAccountSerializer(account).data)

    @extend_schema(summary="Deactivate a service account (revokes its tokens)", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        self.call(services.deactivate_service_account, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenActionsMixin(ServiceCallMixin):
    """List, create, show, rotate and revoke tokens; subclasses say whose tokens they are."""

    queryset = ApiToken.objects.all()
    serializer_class = s.TokenSerializer
    lookup_url_kwarg = "token_id"
    error_statuses = (409,)

    def token_owner(self) -> dict:
        raise NotImplementedError

    def created(self, token, secret, status_code):
        token.token = secret
        return Response(s.TokenCreatedSerializer(token).data, status=status_code)

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = s.TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        token, secret = self.call(services.create_api_token, self.org, fields["name"],
                                  expires_at=fields["expires_at"], created_by=person(request),
                                  scope_environments=fields["scope_environments"], scope_flows=fields["scope_flows"],
                                  read_only=fields["read_only"], allowed_networks=fields["allowed_networks"],
                                  **self.token_owner())
        return self.created(token, secret, status.HTTP_201_CREATED)

    @extend_schema(request=s.TokenRotateSerializer, responses={201: s.TokenCreatedSerializer})
    def rotate(self, request, *args, **kwargs):
        token = self.get_object()
        data = s.TokenRotateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        new, secret = self.call(services.rotate_api_token, token, data.validated_data["grace_seconds"],
                                created_by=person(request))
        return self.created(new, secret, status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke a token now", responses={204: None})
    def destroy(self, request, *args, **kwargs):
        self.call(services.revoke_api_token, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ServiceAccountTokenViewSet(TokenActionsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                                 OrgScopedViewSet):
    permission = "tokens.manage"

    def account(self) -> ServiceAccount:
        return get_object_or_404(ServiceAccount.objects.for_org(self.org), pk=self.kwargs["account_id"])

    def get_queryset(self):
        return super().get_queryset().filter(service_account=self.account())

    def token_owner(self) -> dict:
        return {"service_account": self.account()}


class PersonalTokenViewSet(TokenActionsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    """The caller's own tokens in the org; they act with the caller's role. Service accounts have none."""

    permission = "tokens.personal"

    def get_queryset(self):
        user = person(self.request)
        queryset = super().get_queryset()
        return queryset.filter(user=user) if user is not None else queryset.none()

    def token_owner(self) -> dict:
        user = person(self.request)
        if user is None:
            raise ApiError(400, "invalid", "Personal tokens belong to people; a service account has its own tokens.")
        return {"user": user}
