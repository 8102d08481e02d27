"""The API's JSON parser: every JSON body goes through ``csm.lib.bounded.load_json`` (size, nesting depth, finite
numbers, an object at the top level), so a hostile body is a 400/413 naming the limit instead of a
RecursionError, a TypeError on ``null`` or an Infinity that the database refuses later.

Multipart ``data_json`` fields use ``load_body_json`` with the same limits (see evidence/api/views.py)."""

from django.conf import settings
from rest_framework.parsers import JSONParser

from csm.api.errors import input_error
from csm.lib.bounded import InputError, load_json


def load_body_json(data, field: str = "body", require_object: bool = True):
    """User JSON text (a body, a multipart field) parsed within the configured limits, or an ApiError."""
    try:
        return load_json(data, field, max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
                         max_depth=settings.CSM_JSON_MAX_DEPTH, require_object=require_object)
    except InputError as error:
        raise input_error(error) from None


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser (it subclasses it so DRF still reads the body through ``request.body``, where
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE applies) with csm's bounds. Every API body is an object; a view
    that takes another top-level value would set ``json_body_any_value = True``."""

    def parse(self, stream, media_type=None, parser_context=None):
        view = (parser_context or {}).get("view")
        data = stream.read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        return load_body_json(data, "body", require_object=not getattr(view, "json_body_any_value", False))
