"""Controls API, the paths the kosli CLI calls (``cmd/kosli/{create,get,list,update,archive,unarchive}Control.go``):

- ``GET  /api/v2/controls/{org}``: ``{controls, page, per_page, total_pages, total_count}`` (``page``,
  ``per_page``, ``search``, repeated ``tag`` as ``key`` or ``key:value``, ``archived=true``,
  ``sort_direction``); ``POST`` creates one (``{identifier, name, description?}``).
- ``GET  /api/v2/controls/{org}/{identifier}``: one control; ``PUT`` updates the fields sent.
- ``POST /api/v2/controls/{org}/{identifier}/archive`` and ``/unarchive``.

Reads take ``evidence.view``; writes ``controls.manage`` (owners and admins). Services: ``evidence/controls.py``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from audit.context import AuditContext
from csm.api.base import OrgScopedAPIView
from csm.api.errors import input_error
from csm.errors import ServiceError
from csm.lib.bounded import InputError, parse_int, parse_page
from evidence import controls
from evidence.api.views import payload
from snapshots.selectors import epoch

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 15  # the CLI's default --page-limit (cmd/kosli/flags.go addListFlags)
READ = extend_schema(responses=OpenApiTypes.OBJECT)
WRITE = extend_schema(request={"application/json": OpenApiTypes.OBJECT},
                      responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})


def control_dict(control, with_counts: dict | None = None) -> dict:
    """What ``printControlAsTable`` / ``printControlsListAsTable`` read: ``identifier``, ``name``,
    ``description``, ``version`` (a number), ``archived`` (a bool), ``created_by``, ``created_at`` (epoch
    seconds, as ``formattedTimestamp`` reads), ``tags`` and ``links`` (objects of strings),
    ``policies_referencing`` (a list: csm's environment policies name no controls, so it is empty). csm's
    ISO times are in ``created_at_iso`` / ``updated_at`` / ``archived_at``."""
    data = {"identifier": control.identifier, "name": control.name, "description": control.description,
            "version": control.version, "archived": control.archived, "created_by": control.created_by,
            "created_at": epoch(control.created_at), "created_at_iso": control.created_at,
            "updated_at": control.updated_at, "archived_at": control.archived_at, "tags": control.tags,
            "links": control.links, "policies_referencing": []}
    if with_counts is not None:
        data["decisions"] = with_counts
    return data


class ControlView(OrgScopedAPIView):
    permission = {"GET": "evidence.view", "default": "controls.manage"}
    error_statuses = (409,)

    def ctx(self):
        return AuditContext.from_request(self.request)


class ControlsView(ControlView):
    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[
        OpenApiParameter("page", int), OpenApiParameter("per_page", int), OpenApiParameter("search", str),
        OpenApiParameter("tag", str, many=True, description="key or key:value; every one must match"),
        OpenApiParameter("archived", bool, description="list archived controls instead of active ones"),
        OpenApiParameter("sort_direction", str, enum=list(controls.SORT_DIRECTIONS))])
    def get(self, request, org):
        params = request.query_params
        try:
            page = parse_page(params.get("page"), "page")
            per_page = parse_int(params.get("per_page") or DEFAULT_PER_PAGE, "per_page", minimum=1,
                                 maximum=MAX_PER_PAGE)
        except InputError as error:
            raise input_error(error) from None
        archived = params.get("archived", "false").lower()
        if archived not in ("true", "false"):
            raise ServiceError("archived must be true or false", "archived")
        queryset = controls.list_controls(self.org, search=params.get("search", "")[:200],
                                          tags=params.getlist("tag")[:20], archived=archived == "true",
                                          sort_direction=params.get("sort_direction") or "asc")
        total = queryset.count()
        rows = [control_dict(c) for c in queryset[(page - 1) * per_page: page * per_page]]
        return Response({"controls": rows, "page": page, "per_page": per_page,
                         "total_pages": -(-total // per_page), "total_count": total})

    @WRITE
    def post(self, request, org):
        control = controls.create_control(self.ctx(), self.org, payload(request))
        return Response(control_dict(control), status=status.HTTP_201_CREATED)


class ControlDetailView(ControlView):
    @READ
    def get(self, request, org, identifier):
        control = controls.get_control(self.org, identifier)
        summary = controls.decisions_of(control, limit=0)
        return Response(control_dict(control, {key: summary[key] for key in ("total", "compliant", "non_compliant")}))

    @WRITE
    def put(self, request, org, identifier):
        control = controls.update_control(self.ctx(), self.org, identifier, payload(request))
        return Response(control_dict(control))


class ControlArchiveView(ControlView):
    @WRITE
    def post(self, request, org, identifier):
        return Response(control_dict(controls.archive_control(self.ctx(), self.org, identifier)))


class ControlUnarchiveView(ControlView):
    @WRITE
    def post(self, request, org, identifier):
        return Response(control_dict(controls.unarchive_control(self.ctx(), self.org, identifier)))
