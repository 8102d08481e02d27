"""kosli's custom attestation types: ``/api/v2/custom-attestation-types/{org}[/{name}[/archive]]``.

- ``POST /custom-attestation-types/{org}`` (``createAttestationType.go``): multipart, field ``data_json`` =
  ``{"name", "description"?, "evaluator"?: {"content_type": "jq", "rules": [...]}, "summary"?: [{"name",
  "expression"}]}`` and, with ``--schema``, a file ``type_schema`` holding the JSON Schema. Creates the type
  or adds a version (kosli's "create or update"). csm's expression ``rule`` may be sent in ``data_json`` too.
- ``GET /custom-attestation-types/{org}`` (``listAttestationTypes.go``): every type with its versions.
- ``GET /custom-attestation-types/{org}/{name}[?version=N]`` (``getAttestationType.go``): the type with all
  versions, or with only version N (a version that is not a whole number is ignored, as kosli documents).
- ``PUT /custom-attestation-types/{org}/{name}/archive`` (``archiveAttestationType.go``, body ``null``).

Reading takes ``evidence.view``; defining and archiving change how compliance is judged, so they take
``evidence.override`` like csm's own ``/api/v2/orgs/{org}/attestation-types``.
"""

from django.conf import settings
from rest_framework import status
from rest_framework.response import Response

from csm.api.errors import ApiError, invalid
from csm.api.parsers import load_body_json
from csm.lib import jsonschemas
from evidence import services
from evidence.api.serializers import custom_type_dict
from evidence.api.views import LIST, READ, WRITE, EvidenceView, payload
from evidence.models import CustomAttestationType

PERMISSION = {"GET": "evidence.view", "default": "evidence.override"}


def _not_found(org, name: str) -> ApiError:
    return ApiError(404, "not_found", f"Custom attestation type '{name}' does not exist for org '{org.slug}'")


def _type_schema(request):
    """The ``type_schema`` file as JSON, within the schema size limit (None when the CLI sent none)."""
    upload = request.FILES.get("type_schema") if hasattr(request, "FILES") else None
    if upload is None:
        return None
    limit = jsonschemas.MAX_SCHEMA_BYTES
    if upload.size > limit:
        message = f"type_schema is larger than the limit of {limit} bytes"
        raise ApiError(413, "too_large", message, {"type_schema": [message]})
    raw = upload.read(min(limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE) + 1)
    return load_body_json(raw, "type_schema", require_object=False)


def definition(request) -> dict:
    """kosli's payload in the names ``services.create_custom_type`` takes."""
    data = payload(request)
    out = {key: data[key] for key in ("name", "description", "rule", "summary", "jq_rules") if key in data}
    evaluator = data.get("evaluator")
    if evaluator is not None:
        if not isinstance(evaluator, dict):
            raise invalid("evaluator must be an object {content_type, rules}", {"evaluator": ["must be an object"]})
        if evaluator.get("content_type", "jq") != "jq":
            message = f"evaluator content_type {str(evaluator.get('content_type'))[:40]!r} is not supported; use 'jq'"
            raise invalid(message, {"evaluator.content_type": [message]})
        out["jq_rules"] = evaluator.get("rules")
    schema = _type_schema(request)
    if schema is not None:
        out["schema"] = schema
    elif "schema" in data:
        out["schema"] = data["schema"]
    return out


class CustomAttestationTypesView(EvidenceView):
    permission = PERMISSION

    @LIST
    def get(self, request, org):
        types = CustomAttestationType.objects.for_org(self.org).select_related("org").prefetch_related("versions")
        return Response([custom_type_dict(custom, custom.versions.all()) for custom in types])

    @WRITE
    def post(self, request, org):
        custom, _added = services.create_custom_type(self.ctx(), self.org, definition(request))
        return Response(custom_type_dict(custom), status=status.HTTP_201_CREATED)


class CustomAttestationTypeView(EvidenceView):
    permission = PERMISSION

    def custom(self, name) -> CustomAttestationType:
        custom = CustomAttestationType.objects.for_org(self.org).select_related("org").filter(name=name).first()
        if custom is None:
            raise _not_found(self.org, name)
        return custom

    @READ
    def get(self, request, org, name):
        custom = self.custom(name)
        wanted = request.query_params.get("version", "")
        if not (wanted.isascii() and wanted.isdigit()):
            return Response(custom_type_dict(custom))
        version = custom.versions.filter(version=int(wanted[:9])).first()
        if version is None:
            raise ApiError(404, "not_found", f"version {wanted[:9]} does not exist for custom attestation type "
                                             f"'{custom.name}'")
        answer = custom_type_dict(custom, [version])
        for key in ("created_by", "created_at", "last_modified_at"):  # kosli answers one version without them
            answer.pop(key)
        return Response(answer)


class CustomAttestationTypeArchiveView(CustomAttestationTypeView):
    @WRITE
    def put(self, request, org, name):
        custom = services.archive_custom_type(self.ctx(), self.org, self.custom(name))
        return Response(custom_type_dict(custom))
