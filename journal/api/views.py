"""The verifiable journal's read API under /api/v2/journal/{org}/ (issue 14, docs/api.md "Journal API").

Thin views over journal/selectors.py. Indices are 0-based Merkle leaf indices (journal leaf #1, the
``journal_index`` 1 of a record, is Merkle leaf 0); sizes are tree sizes no larger than the latest
checkpoint's. Checkpoints, keys, proofs and hash tiles need ``journal.view``, which every role holds (the
snapshotter too: agents are witnesses, and hashes reveal nothing). The entries themselves — ``entries/{i}``
and ``tile/entries/...`` — ARE the audit trail (actors, IP addresses, user agents), so they need
``audit.view``. Errors are JSON in the API's one format, whatever ``Accept`` the client sent.
"""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from csm.api.base import OrgScopedAPIView
from csm.errors import ServiceError
from csm.lib.bounded import parse_int
from journal import selectors
from journal.tiles import parse_entry_bundle, parse_hash_tile

IMMUTABLE = "max-age=31536000, immutable"
# A partial tile's bytes never change either, but a client should move on to the full tile once it
# exists, so partial tiles are cached for a minute only.
PARTIAL = "max-age=60"
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"


class AlwaysJson(BaseContentNegotiation):
    """The answers of these views are built by hand (text, bytes); DRF's renderer is only used for
    errors, which are JSON whatever the client accepts (``Accept: text/plain`` must not turn a 400
    into a 406)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


def _raw(body: bytes | str, content_type: str, cache: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = cache
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _latest_size(org) -> int:
    return selectors.checkpoint_or_404(org).size


def query_number(request, name: str, default=None) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        if default is None:
            raise ServiceError(f"{name} is required", field=name)
        return default()
    return parse_int(text, name, minimum=0)


class JournalView(OrgScopedAPIView):
    permission = "journal.view"
    content_negotiation_class = AlwaysJson
    error_statuses = (400,)


_HASHES = serializers.ListField(child=serializers.CharField(), help_text="base64 SHA-256 hashes, RFC 9162 order")
_INCLUSION = inline_serializer("InclusionProof", {
    "index": serializers.IntegerField(), "size": serializers.IntegerField(), "hashes": _HASHES})
_CONSISTENCY = inline_serializer("ConsistencyProof", {
    "from": serializers.IntegerField(), "to": serializers.IntegerField(), "hashes": _HASHES})
_TEXT = {(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)}
_BYTES = {(200, OCTETS): OpenApiResponse(OpenApiTypes.BINARY)}


class CheckpointView(JournalView):
    """The latest signed checkpoint (C2SP tlog-checkpoint as a signed note, with any witness
    cosignatures); 404 until the org's first checkpoint. Never cached without revalidation: it moves."""

    @extend_schema(responses=_TEXT)
    def get(self, request, org):
        checkpoint = selectors.checkpoint_or_404(self.org)
        return _raw(selectors.served_note(checkpoint), TEXT, "no-cache")


class KeyView(JournalView):
    """Every key that ever signed checkpoints (``<name>+<hex id>+<base64 key>``), newest first, one per
    line: old checkpoints keep verifying with the key that signed them."""

    @extend_schema(responses=_TEXT)
    def get(self, request, org):
        return _raw("".join(f"{key}\n" for key in selectors.verifier_keys()), TEXT, "no-cache")


class EntryView(JournalView):
    """The exact bytes hashed for Merkle leaf ``index`` (canonical JSON). Needs ``audit.view``: the
    leaves are the audit trail, with actors, IP addresses and user agents."""

    permission = "audit.view"

    @extend_schema(responses={(200, "application/json"): OpenApiResponse(
        OpenApiTypes.OBJECT, description="The leaf: a canonical JSON object, byte for byte as hashed.")})
    def get(self, request, org, index):
        data = selectors.entry(self.org, parse_int(index, "index", minimum=0))
        return _raw(data, "application/json", f"private, {IMMUTABLE}")


class InclusionProofView(JournalView):
    """RFC 9162 inclusion path of leaf ``index`` in the tree of ``size`` leaves (default: the latest
    checkpoint's size)."""

    @extend_schema(responses=_INCLUSION, parameters=[
        OpenApiParameter("index", int, required=True, description="0-based Merkle leaf index (journal_index - 1)"),
        OpenApiParameter("size", int, description="Tree size (default: the latest checkpoint's)")])
    def get(self, request, org):
        index = query_number(request, "index")
        size = query_number(request, "size", lambda: _latest_size(self.org))
        hashes = selectors.inclusion(self.org, index, size)
        return Response({"index": index, "size": size, "hashes": [selectors.b64(h) for h in hashes]})


class ConsistencyProofView(JournalView):
    """RFC 9162 consistency proof between the trees of ``from`` and ``to`` leaves (``to`` default: the
    latest checkpoint's size): what a witness checks before it trusts a new checkpoint."""

    @extend_schema(responses=_CONSISTENCY, parameters=[
        OpenApiParameter("from", int, required=True, description="The older tree size"),
        OpenApiParameter("to", int, description="The newer tree size (default: the latest checkpoint's)")])
    def get(self, request, org):
        old = query_number(request, "from")
        new = query_number(request, "to", lambda: _latest_size(self.org))
        hashes = selectors.consistency(self.org, old, new)
        return Response({"from": old, "to": new, "hashes": [selectors.b64(h) for h in hashes]})


class HashTileView(JournalView):
    """C2SP tlog-tiles hash tile ``tile/<L>/<N>[.p/<W>]``: 32-byte hashes of tree level ``8 * L``. A full
    tile never changes (cached forever, publicly: hashes reveal nothing); 400 for a malformed path, 404
    beyond the published tree."""

    @extend_schema(responses=_BYTES)
    def get(self, request, org, tile):
        ref = parse_hash_tile(tile)
        data = selectors.tile(self.org, ref.level, ref.number, ref.width)
        return _raw(data, OCTETS, f"public, {PARTIAL if ref.width else IMMUTABLE}")


class EntryBundleView(JournalView):
    """C2SP tlog-tiles entry bundle ``tile/entries/<N>[.p/<W>]``: each leaf's bytes after a big-endian
    16-bit length. Needs ``audit.view`` (the leaves are the audit trail), so caches keep it private."""

    permission = "audit.view"

    @extend_schema(responses=_BYTES)
    def get(self, request, org, tile):
        ref = parse_entry_bundle(tile)
        data = selectors.entry_bundle(self.org, ref.number, ref.width)
        return _raw(data, OCTETS, f"private, {PARTIAL if ref.width else IMMUTABLE}")
