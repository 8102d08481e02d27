"""Alert actions API: ``/api/v2/orgs/{org}/actions`` (create, list, read, update, delete, deliveries,
test send) and ``/api/v2/orgs/{org}/deliveries/{id}/redeliver``."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from alerts import services
from alerts.api.serializers import (
    ActionInputSerializer,
    ActionSerializer,
    CreatedActionSerializer,
    DeliverySerializer,
)
from alerts.choices import DeliveryStatus, Trigger
from alerts.filters import DeliveryFilterSet
from alerts.models import Action, Delivery, DeliveryAttempt
from audit.context import AuditContext
from csm.api.base import OrgScopedAPIView
from csm.api.pagination import Pagination
from csm.api.schema import paginated


class ActionMixin:
    def get_action(self, action_id) -> Action:
        return get_object_or_404(Action.objects.for_org(self.org), pk=action_id, deleted_at=None)


class ActionListView(OrgScopedAPIView):
    permission = {"GET": "actions.view", "default": "actions.manage"}
    error_statuses = (409,)

    @extend_schema(responses=ActionSerializer(many=True))
    def get(self, request, org):
        actions = Action.objects.for_org(self.org).filter(deleted_at=None).order_by("name")
        return Response(ActionSerializer(actions, many=True).data)

    @extend_schema(request=ActionInputSerializer, responses={201: CreatedActionSerializer})
    def post(self, request, org):
        body = ActionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        data.pop("enabled", None)
        action, secret = services.create_action(AuditContext.from_request(request), self.org, **data)
        answer = ActionSerializer(action).data
        answer["secret"] = secret
        return Response(answer, status=status.HTTP_201_CREATED)


class ActionDetailView(ActionMixin, OrgScopedAPIView):
    permission = {"GET": "actions.view", "default": "actions.manage"}
    error_statuses = (409,)

    @extend_schema(responses=ActionSerializer)
    def get(self, request, org, action_id):
        return Response(ActionSerializer(self.get_action(action_id)).data)

    def _update(self, request, action_id, partial):
        action = self.get_action(action_id)
        body = ActionInputSerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        action = services.update_action(AuditContext.from_request(request), self.org, action,
                                        **body.validated_data)
        return Response(ActionSerializer(action).data)

    @extend_schema(request=ActionInputSerializer, responses=ActionSerializer)
    def put(self, request, org, action_id):
        return self._update(request, action_id, partial=False)

    @extend_schema(request=ActionInputSerializer, responses=ActionSerializer)
    def patch(self, request, org, action_id):
        return self._update(request, action_id, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request, org, action_id):
        services.delete_action(AuditContext.from_request(request), self.org, self.get_action(action_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActionDeliveriesView(ActionMixin, OrgScopedAPIView):
    """The delivery log of an action, newest first, each with its attempts (paginated), filtered by
    ``status``, ``event_type`` and ``environment`` (alerts/filters.py)."""

    permission = "actions.view"

    @extend_schema(responses=paginated("PaginatedDeliveryList", DeliverySerializer(many=True)), parameters=[
        OpenApiParameter("status", str, enum=DeliveryStatus.values),
        OpenApiParameter("event_type", str, enum=Trigger.values),
        OpenApiParameter("environment", str, description="environment name"),
        OpenApiParameter("page", int), OpenApiParameter("per_page", int)])
    def get(self, request, org, action_id):
        action = self.get_action(action_id)
        attempts = Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("number"))
        deliveries = DeliveryFilterSet(request.query_params, queryset=Delivery.objects.for_org(self.org)
                                       .filter(action=action).prefetch_related(attempts)).qs_or_400()
        paginator = Pagination()
        page = paginator.paginate_queryset(deliveries.order_by("-created_at", "-id"), request, view=self)
        return paginator.get_paginated_response(DeliverySerializer(page, many=True).data)


class ActionTestView(ActionMixin, OrgScopedAPIView):
    permission = "actions.manage"

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request, org, action_id):
        delivery = services.test_action(AuditContext.from_request(request), self.org, self.get_action(action_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class RedeliverView(OrgScopedAPIView):
    permission = "actions.manage"
    error_statuses = (409,)

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request, org, delivery_id):
        delivery = get_object_or_404(Delivery.objects.for_org(self.org), pk=delivery_id)
        delivery = services.redeliver(AuditContext.from_request(request), self.org, delivery)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
