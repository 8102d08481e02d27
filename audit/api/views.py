"""GET /api/v2/orgs/{org}/audit-events: the org's audit trail, filtered and paginated (admins, owners)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins

from audit.api.serializers import AuditEventSerializer
from audit.choices import ActorType, AuditAction
from audit.filters import AuditFilterForm
from audit.models import AuditEvent
from csm.api.base import OrgScopedViewSet
from csm.api.errors import invalid

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
    filter_backends: list = []

    def get_queryset(self):
        queryset = super().get_queryset().select_related("leaf").order_by("-seq")
        if self.action != "list":
            return queryset
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            fields = {name: [str(problem) for problem in problems] for name, problems in form.errors.items()}
            name, problems = next(iter(fields.items()))
            raise invalid(f"Invalid filter: {name}: {problems[0]}", fields)
        return form.filter(queryset)

    @extend_schema(parameters=_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)
