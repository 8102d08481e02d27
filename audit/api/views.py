"""GET /api/v2/orgs/{org}/audit-events: the org's audit trail, filtered and paginated (admins, owners)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins

from audit.api.serializers import AuditEventSerializer
from audit.choices import ActorType, AuditAction
from audit.filters import AuditEventFilterSet
from audit.models import AuditEvent
from csm.api.base import OrgScopedViewSet
from csm.api.filters import FilterBackend

_FILTERS = [
    OpenApiParameter("actor", str, description="Part of the actor's email, name or token prefix"),
    OpenApiParameter("actor_type", str, enum=ActorType.values),
    OpenApiParameter("action", str, enum=AuditAction.values),
    OpenApiParameter("target_type", str, description="e.g. user, apitoken, serviceaccount, invitation, org"),
    OpenApiParameter("target_id", str),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Events at or after this time (ISO 8601)"),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Events before this time (ISO 8601)"),
]


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    lookup_url_kwarg = "event_id"
    permission = "audit.view"
    filter_backends = [FilterBackend]
    filterset_class = AuditEventFilterSet

    def get_queryset(self):
        return super().get_queryset().select_related("leaf").order_by("-seq")

    def filter_queryset(self, queryset):
        # The filters belong to the list: reading one event by id ignores the query string, as it always has.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(parameters=_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
