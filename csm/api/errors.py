"""One error format for the whole API: ``{"error": {"code", "message", "fields"}, "message"}``.

``fields`` maps a field path (``artifacts[3].digests``) to a list of problems; it is ``{}`` when the
error is not about a field. The top-level ``message`` repeats ``error.message`` where the kosli CLI looks
for it: kosli's server answers errors as ``{"message": ...}`` and the CLI (``internal/requests``,
``Client.Do``) prints that string, else the whole body as a Go map. With it, a kosli user sees csm's
sentence, not ``map[error:map[...]]``.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from csm.errors import ServiceError
from csm.lib.bounded import InputError


class ApiError(exceptions.APIException):
    """An error with an explicit status, code, message and optional field problems."""

    def __init__(self, status_code: int, code: str, message: str, fields: dict | None = None):
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields = fields or {}
        super().__init__(detail=message, code=code)


def _service_error(error: ServiceError) -> ApiError:
    """A refused write (csm.errors.ServiceError) as an API error; its field, if any, names the input."""
    return ApiError(error.status, error.code, error.message, {error.field: [error.message]} if error.field else {})


def input_error(error: InputError) -> ApiError:
    """A refused input (csm.lib.bounded.InputError) as an API error: its field names the parameter, its
    message the limit."""
    return ApiError(error.status, error.code, error.message, {error.field: [error.message]})


def invalid(message: str, fields: dict | None = None) -> ApiError:
    return ApiError(status.HTTP_400_BAD_REQUEST, "invalid", message, fields)


def _flatten(detail, prefix="") -> dict:
    """DRF's nested ValidationError detail → ``{"a.b[0].c": ["problem", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                path = "non_field_errors"
            out.update(_flatten(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(_flatten(item, f"{prefix}[{index}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}, "message": message}


def request_limit_error(exc: SuspiciousOperation) -> ApiError | None:
    """Django's own request limits (raised while a multipart or form body is read) as the API's error: by
    default Django answers them with its HTML 400 page, even on /api/."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = f"The request body is larger than the limit of {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
        return ApiError(413, "too_large", message, {"body": [message]})
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        message = f"The request has more than {limit} form fields (the limit, DATA_UPLOAD_MAX_NUMBER_FIELDS)."
        return ApiError(400, "invalid", message, {"body": [message]})
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        message = f"The request has more than {limit} files (the limit, DATA_UPLOAD_MAX_NUMBER_FILES)."
        return ApiError(400, "invalid", message, {"body": [message]})
    return None


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        exc = _service_error(exc)
    elif isinstance(exc, InputError):
        exc = input_error(exc)
    elif isinstance(exc, SuspiciousOperation):
        exc = request_limit_error(exc) or exc
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        response.data = error_body(exc.code, exc.message, exc.fields)
    elif isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), None)
        message = f"Invalid input: {first[0]}: {first[1][0]}" if first else "Invalid input."
        response.data = error_body("invalid", message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(code, str(detail))
    return response


def json_404(request, exception=None):
    """Django-level 404 for unknown /api/ paths, in the API's error format."""
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def json_500(request):
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)
