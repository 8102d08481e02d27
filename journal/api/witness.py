"""Witness cosignatures and RFC 3161 timestamps of the journal's checkpoints (docs/journal-witnesses.md).

- ``POST /api/v2/journal/{org}/cosignature`` — a witness (or whoever relays for it) hands in
  ``cosignature/v1`` lines, or the whole cosigned checkpoint, as ``text/plain``; csm stores those of
  configured witness keys that verify (journal/witness.py) and serves them after its own signature.
- ``GET /api/v2/journal/{org}/checkpoint/timestamp[?size=N]`` — the DER RFC 3161 ``TimeStampResp`` over
  the latest checkpoint's signed note (or the newest timestamped one of tree size N).

Routed in journal/api/urls.py; ``journal.view`` like the other hash-only reads (agents are witnesses).
"""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from csm.api.base import OrgScopedAPIView
from csm.api.errors import ApiError, invalid
from journal.api.views import AlwaysJson, query_number
from journal.timestamps import REPLY_TYPE, timestamped_checkpoint
from journal.witness import MAX_COSIGNATURE_BYTES, add_cosignatures


def _read_text(request) -> str:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    raw = b"" if declared > MAX_COSIGNATURE_BYTES else request._request.read(MAX_COSIGNATURE_BYTES + 1)
    if declared > MAX_COSIGNATURE_BYTES or len(raw) > MAX_COSIGNATURE_BYTES:
        message = f"The body is larger than {MAX_COSIGNATURE_BYTES} bytes; send only the cosignature lines."
        raise ApiError(413, "too_large", message, {"body": [message]})
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("The body is not UTF-8 text.", {"body": ["not UTF-8"]}) from None


class CosignatureView(OrgScopedAPIView):
    """A witness's cosignatures of one of the org's checkpoints; a line stored before is a no-op."""

    permission = "journal.view"
    parser_classes: list = []
    content_negotiation_class = AlwaysJson
    error_statuses = (413,)

    @extend_schema(request={"text/plain": OpenApiTypes.STR}, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, org):
        rows = add_cosignatures(self.org, _read_text(request), actor=request)
        return Response({"cosignatures": [
            {"witness": row.witness, "key_id": row.key_id, "timestamp": row.timestamp,
             "tree_size": row.checkpoint.size}
            for row in rows]})


class CheckpointTimestampView(OrgScopedAPIView):
    """The RFC 3161 token of a checkpoint, as the TSA sent it."""

    permission = "journal.view"
    content_negotiation_class = AlwaysJson

    @extend_schema(responses={(200, REPLY_TYPE): OpenApiTypes.BINARY},
                   parameters=[OpenApiParameter("size", int, required=False)])
    def get(self, request, org):
        checkpoint = timestamped_checkpoint(self.org, query_number(request, "size", lambda: None))
        response = HttpResponse(bytes(checkpoint.timestamp_token), content_type=REPLY_TYPE)
        response["Csm-Checkpoint-Size"] = str(checkpoint.size)
        response["Cache-Control"] = "no-cache"  # a newer checkpoint (or a re-signed one of this size) may follow
        return response

