"""``PATCH /api/v2/tags/{org}/{type}/{id}`` (kosli ``tag``, cmd/kosli/tag.go): ``{"set_tags": {k: v},
"remove_tags": [k]}`` on a flow (by name), an environment (by name), a repository (by csm's id, which
``kosli tag repo NAME`` resolves first through ``GET /api/v2/repos/{org}/{name}``) or any type registered in
``evidence.tags``. The org is resolved with ``org.view`` (another org is a 404); the type's own permission is
checked once the type is known. The answer is ``{type, id, tags}`` (the CLI reads nothing from it)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from audit.context import AuditContext
from csm.api.base import OrgScopedAPIView
from evidence import tags
from evidence.api.views import payload
from tenants.access import require_permission


class TagsView(OrgScopedAPIView):
    permission = "org.view"  # the type's permission is checked in patch(), once the type is known
    error_statuses = (404,)
    scope_mapped_kwargs = ("identifier",)  # names an environment or a flow, by kind (scope_names)

    def scope_names(self, request, kwargs):
        environments, flows = super().scope_names(request, kwargs)
        kind = tags.REGISTRY.get(kwargs.get("kind", ""))
        if kind is not None and kind.name == "environment":
            environments.append(kwargs["identifier"])
        elif kind is not None and kind.name == "flow":
            flows.append(kwargs["identifier"])
        return environments, flows

    @extend_schema(request={"application/json": OpenApiTypes.OBJECT}, responses={200: OpenApiTypes.OBJECT})
    def patch(self, request, org, kind, identifier):
        spec = tags.tag_type(kind)
        require_permission(request, self.org_access, spec.permission)
        data = payload(request)
        target = tags.change_tags(AuditContext.from_request(request), self.org, spec.name, identifier,
                                  data.get("set_tags"), data.get("remove_tags"))
        return Response({"type": spec.name, "id": identifier, "tags": target.tags})
