"""Vulnerability exposure API (org read permission, ``environments.view``: the answers say what runs
where). Reads only; every answer is a fixed number of queries (``vulns.exposure``) and carries the
snapshot indexes and journal leaves of its windows plus the org journal's ``journal_index`` when
answered, so an auditor can check it.

- ``GET /api/v2/vulnerabilities/{org}?environment=&severity=&running=`` — the org's vulnerabilities,
  running exposure first, then worst first; paged (``page``, ``per_page``).
- ``GET /api/v2/vulnerabilities/{org}/{id}?environment=`` — one vulnerability by any alias (any case):
  what the databases say, and ``running`` / ``history`` / ``suppressed`` / ``coverage_unknown``.
- ``GET /api/v2/components/{org}?purl=&environment=`` — where a component runs and ran, per artifact
  (paged), with its known vulnerabilities.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from csm.api.base import OrgScopedAPIView
from csm.api.errors import invalid
from csm.api.pagination import Pagination
from journal.models import JournalHead
from snapshots.selectors import environment_named
from vulns import exposure
from vulns.api.serializers import (
    ComponentAnswerSerializer,
    ComponentArtifactSerializer,
    ComponentQuery,
    CoverageUnknownSerializer,
    EnvironmentQuery,
    VulnerabilityDetailSerializer,
    VulnerabilityListAnswerSerializer,
    VulnerabilityListItemSerializer,
    VulnerabilityListQuery,
)

PAGE_PARAMETERS = [OpenApiParameter("page", int), OpenApiParameter("per_page", int, description="at most 500")]


def journal_index(org) -> int:
    """The org journal's last leaf: the state of the journal the answer was read from."""
    return JournalHead.objects.filter(org=org).values_list("last_index", flat=True).first() or 0


class ExposureView(OrgScopedAPIView):
    permission = "environments.view"
    error_statuses = (400,)

    def query(self, serializer_class) -> dict:
        """The validated query parameters (a 400 naming each bad one), ``environment`` resolved."""
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        data = dict(query.validated_data)
        name = data.get("environment")
        data["environment"] = None
        if name:
            data["environment"] = environment_named(self.org, name)
            if data["environment"] is None:
                raise invalid(f"No environment named {name!r} in this org.",
                              {"environment": [f"No environment named {name!r} in this org."]})
        return data


class VulnerabilityListView(ExposureView):
    @extend_schema(parameters=[VulnerabilityListQuery, *PAGE_PARAMETERS], responses=VulnerabilityListAnswerSerializer)
    def get(self, request, org):
        query = self.query(VulnerabilityListQuery)
        environment = query["environment"]
        items = exposure.vulnerability_list(self.org, environment, query.get("severity"), query["running"])
        paginator = Pagination()
        page = paginator.paginate_queryset(items, request, view=self)
        response = paginator.get_paginated_response(VulnerabilityListItemSerializer(page, many=True).data)
        response.data["environment"] = environment.name if environment else None
        response.data["journal_index"] = journal_index(self.org)
        return response


class VulnerabilityDetailView(ExposureView):
    @extend_schema(parameters=[EnvironmentQuery], responses=VulnerabilityDetailSerializer)
    def get(self, request, org, vulnerability):
        environment = self.query(EnvironmentQuery)["environment"]
        group_id = exposure.resolve_group(vulnerability)
        detail = exposure.vulnerability_detail(group_id) if group_id else None
        if detail is None:
            raise NotFound(f"No vulnerability {vulnerability[:200]!r} is known (by any of its ids).")
        withdrawn = [a["withdrawn"] for a in detail["advisories"]]
        answer = {**detail, "id": vulnerability, "withdrawn": max(withdrawn) if all(withdrawn) else None,
                  "environment": environment.name if environment else None,
                  **exposure.vulnerability_exposure(self.org, group_id, environment),
                  "journal_index": journal_index(self.org)}
        return Response(VulnerabilityDetailSerializer(answer).data)


class ComponentView(ExposureView):
    @extend_schema(parameters=[ComponentQuery, *PAGE_PARAMETERS], responses=ComponentAnswerSerializer)
    def get(self, request, org):
        query = self.query(ComponentQuery)
        environment = query["environment"]
        try:
            found = exposure.component_artifacts(self.org, query["purl"], environment)
        except ValueError as error:
            raise invalid(f"purl: {error}.", {"purl": [str(error)]}) from None
        paginator = Pagination()
        page = paginator.paginate_queryset(found["artifacts"], request, view=self)
        exposure.vulnerabilities_of_component(self.org, page)
        response = paginator.get_paginated_response(ComponentArtifactSerializer(page, many=True).data)
        coverage = exposure.coverage_unknown(self.org, environment)
        response.data.update({
            "purl": query["purl"], "package_key": found["package_key"], "version": found["version"],
            "environment": environment.name if environment else None, "never_ran": found["never_ran"],
            "coverage_unknown": CoverageUnknownSerializer(coverage, many=True).data,
            "journal_index": journal_index(self.org)})
        return response
