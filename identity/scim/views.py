"""The SCIM 2.0 API (RFC 7644) at /scim/v2/: Users, Groups and the discovery documents. Outside /api/v2/: its
own authentication (an org's SCIM token, never a session or an API token), bodies as ``application/scim+json``
or ``application/json`` (answered in the one the client accepts), and RFC 7644 §3.12 error bodies for every
failure. The org comes from the token alone. Views stay thin: identity/scim/services.py writes and audits."""

from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from csm.api.authentication import token_from_header
from csm.api.parsers import BoundedJSONParser
from csm.errors import ServiceError
from csm.lib.bounded import InputError
from identity.scim import schemas, services
from identity.scim.errors import ScimError, not_found


class ScimPrincipal:
    """``request.user`` of a SCIM request: the identity provider holding the org's SCIM token."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, token):
        self.token = token

    def __str__(self):
        return f"SCIM ({self.token.prefix}…)"


class ScimTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        token = services.scim_token_for(token_from_header(header), request)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked SCIM token.")
        return ScimPrincipal(token), token

    def authenticate_header(self, request):
        return 'Bearer realm="csm-scim"'


class ScimJSONParser(BoundedJSONParser):
    media_type = "application/scim+json"


class ScimJSONRenderer(JSONRenderer):
    media_type = "application/scim+json"


class ScimNegotiation(DefaultContentNegotiation):
    """SCIM's own media type unless the client asks for plain JSON only; never a 406 (IdPs send odd Accepts)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "")
        plain_json = "application/json" in accept and "application/scim+json" not in accept
        chosen = renderers[1] if plain_json else renderers[0]
        return chosen, chosen.media_type


def scim_exception_handler(exc, context):
    """Every failure as an RFC 7644 error body; None (a 500) for a bug."""
    if isinstance(exc, ServiceError):
        exc = ScimError(exc.status, exc.message, "uniqueness" if exc.code == "conflict" and exc.field in (
            "userName", "displayName") else None)
    elif isinstance(exc, InputError):
        exc = ScimError(exc.status, exc.message, "invalidSyntax" if exc.status == 400 else None)
    elif isinstance(exc, exceptions.ParseError):
        exc = ScimError(400, str(exc.detail), "invalidSyntax")
    elif isinstance(exc, (Http404, exceptions.NotFound)):
        exc = ScimError(404, str(exc) or "Not found.")
    elif isinstance(exc, exceptions.APIException):
        headers = {"WWW-Authenticate": exc.auth_header} if getattr(exc, "auth_header", None) else {}
        if isinstance(exc, exceptions.NotAuthenticated):
            exc.detail = "A SCIM token is required: Authorization: Bearer csmscim_…"
        return Response(ScimError(exc.status_code, str(exc.detail)).body(), status=exc.status_code, headers=headers)
    if isinstance(exc, ScimError):
        return Response(exc.body(), status=exc.status)
    return None


class ScimView(APIView):
    authentication_classes = [ScimTokenAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [ScimJSONParser, BoundedJSONParser]
    renderer_classes = [ScimJSONRenderer, JSONRenderer]
    content_negotiation_class = ScimNegotiation
    throttle_classes = []
    schema = None  # SCIM documents itself (/ServiceProviderConfig, /Schemas, /ResourceTypes), not in OpenAPI

    def get_exception_handler(self):
        return scim_exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.token = request.auth
        self.org = self.token.org
        self.ctx = services.scim_context(request, self.token)


class ServiceProviderConfigView(ScimView):
    def get(self, request):
        return Response(schemas.service_provider_config())


class SchemasView(ScimView):
    def get(self, request, schema_id=None):
        documents = schemas.schemas()
        if schema_id is None:
            return Response(schemas.list_response(documents))
        found = next((d for d in documents if d["id"].lower() == schema_id.lower()), None)
        if found is None:
            raise not_found("Schema", schema_id)
        return Response(found)


class ResourceTypesView(ScimView):
    def get(self, request, name=None):
        documents = schemas.resource_types()
        if name is None:
            return Response(schemas.list_response(documents))
        found = next((d for d in documents if d["id"].lower() == name.lower()), None)
        if found is None:
            raise not_found("ResourceType", name)
        return Response(found)


class UsersView(ScimView):
    def get(self, request):
        answer = services.list_resources(self.org, "Users", request.query_params)
        answer["Resources"] = [services.select_attributes(r, request.query_params) for r in answer["Resources"]]
        return Response(answer)

    def post(self, request):
        row = services.create_user(self.ctx, self.org, request.data)
        resource = services.user_resource(row)
        return Response(resource, status=201, headers={"Location": resource["meta"]["location"]})


class UserView(ScimView):
    def _answer(self, request, row):
        return Response(services.select_attributes(services.user_resource(row), request.query_params))

    def get(self, request, resource_id):
        return self._answer(request, services.get_user(self.org, resource_id))

    def put(self, request, resource_id):
        row = services.replace_user(self.ctx, self.org, services.get_user(self.org, resource_id), request.data)
        return self._answer(request, row)

    def patch(self, request, resource_id):
        row = services.patch_user(self.ctx, self.org, services.get_user(self.org, resource_id), request.data)
        return self._answer(request, row)

    def delete(self, request, resource_id):
        services.delete_user(self.ctx, self.org, services.get_user(self.org, resource_id))
        return Response(status=204)


class GroupsView(ScimView):
    def get(self, request):
        answer = services.list_resources(self.org, "Groups", request.query_params)
        answer["Resources"] = [services.select_attributes(r, request.query_params) for r in answer["Resources"]]
        return Response(answer)

    def post(self, request):
        group = services.create_group(self.ctx, self.org, request.data)
        resource = services.group_resource(group)
        return Response(resource, status=201, headers={"Location": resource["meta"]["location"]})


class GroupView(ScimView):
    def get(self, request, resource_id):
        group = services.get_group(self.org, resource_id)
        return Response(services.select_attributes(services.group_resource(group), request.query_params))

    def put(self, request, resource_id):
        group = services.replace_group(self.ctx, self.org, services.get_group(self.org, resource_id), request.data)
        return Response(services.select_attributes(services.group_resource(group), request.query_params))

    def patch(self, request, resource_id):
        """204 without a body, as Entra ID recommends for groups (a large group's member list stays home)."""
        services.patch_group(self.ctx, self.org, services.get_group(self.org, resource_id), request.data)
        return Response(status=204)

    def delete(self, request, resource_id):
        services.delete_group(self.ctx, self.org, services.get_group(self.org, resource_id))
        return Response(status=204)


@csrf_exempt
def unknown_endpoint(request):
    """No such SCIM endpoint (csm implements no /Bulk and no /Me): 404 in SCIM's error format."""
    error = ScimError(404, f"No SCIM endpoint at {request.path}.")
    return JsonResponse(error.body(), status=404, content_type="application/scim+json")
