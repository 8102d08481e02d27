"""OpenAPI schema: every operation declares the error responses it can give, in the error format."""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from csm.api.serializers import ErrorSerializer

# Raw response schemas for the kosli-shaped answers that have no serializer (``extend_schema(responses=...)``).
JSON_OBJECT = {"type": "object", "additionalProperties": {}}
JSON_LIST = {"type": "array", "items": JSON_OBJECT}
# kosli's list endpoints answer a plain array, or with ``page`` / ``per_page`` its paginated object.
JSON_LIST_OR_PAGE = {"oneOf": [JSON_LIST, JSON_OBJECT]}


def paginated(name: str, serializer: serializers.Serializer) -> serializers.Serializer:
    """The body csm.api.pagination.Pagination answers for a page of ``serializer`` (an APIView that paginates
    by hand; viewsets get this from drf-spectacular)."""
    return inline_serializer(name, fields={
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer,
    })

_DESCRIPTIONS = {
    "400": "Invalid input: `error.fields` names each field and its problem.",
    "401": "Missing, malformed, unknown, expired or revoked token (`WWW-Authenticate` is set).",
    "403": "Authenticated, but the role lacks the permission named in the message.",
    "404": "Not found, or belongs to another org.",
    "409": "Conflict with the current state.",
    "413": "Body or upload too large.",
    "415": "The body's Content-Type is not one the operation accepts, or the body does not parse as it.",
    "422": "Idempotency-Key reused with a different body.",
    "429": "Too many requests.",
}


class AutoSchema(SpectacularAutoSchema):
    def _error_statuses(self) -> list[int]:
        # 400 everywhere: every path and query parameter goes through the bounded parsers and filter sets, and
        # a request Django refuses before any view (a bad Host, too many fields) is a 400 JSON too.
        statuses = [400, 401, 403, 404]
        if self.method in ("POST", "PUT", "PATCH"):
            statuses.append(413)  # the JSON body limit (CSM_MAX_JSON_BODY_BYTES) applies to every body
            statuses.append(415)  # DRF's parsers: another Content-Type, or a multipart body that is not one
        statuses.extend(getattr(self.view, "error_statuses", ()))
        return sorted(set(statuses))

    def _tokenize_path(self) -> list[str]:
        """Path variables other than ``org`` stay in the operation id, so ``/flows/{org}`` and
        ``/flows/{org}/{flow}`` get distinct ids (``flows_retrieve``, ``flows_flow_retrieve``)."""
        path = re.sub(self.path_prefix, "", self.path, flags=re.IGNORECASE)
        path = re.sub(r"\{org\}", "", path)
        path = re.sub(r"\{([\w-]+)\}", r"\1", path)
        return [token for token in path.strip("/").split("/") if token]

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in self._error_statuses():
            code = str(status)
            if code not in responses:
                body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                body["description"] = _DESCRIPTIONS.get(code, body.get("description", ""))
                responses[code] = body
        return responses


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Documents csm.api.authentication.ApiTokenAuthentication (registered by being defined)."""

    target_class = "csm.api.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "csm_...",
                "description": "`Authorization: Bearer csm_...`; HTTP Basic with the token as user name and an "
                               "empty password is accepted too."}
