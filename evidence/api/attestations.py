"""``kosli get attestation`` (``cmd/kosli/getAttestation.go``) in its three forms, read-only:

- by name on a trail: ``GET /api/v2/attestations/{org}/{flow}/trail/{trail}/{name}`` — the same path
  ``kosli attest <type>`` POSTs to (there the last segment is the type), so one view serves both;
- by name on an artifact: ``GET /api/v2/attestations/{org}/{flow}/artifact/{fingerprint}/{name}``
  (a unique fingerprint prefix of 5 to 64 hex digits is taken, as for ``get artifact``);
- by id: ``GET /api/v2/attestations/{org}?attestation_id={id}`` — also what ``kosli evaluate trail(s)`` calls
  for every ``attestation_id`` of a trail to enrich its Rego input (``cmd/kosli/evaluateHelpers.go``).

The by-name forms answer a JSON list (every attestation of that name, newest first); the by-id form
``{"data": [...]}`` — the CLI's printer takes either, ``evaluate`` reads ``data[0]``. Nothing found is an
empty list with 200, which the CLI prints as "No attestations found." (its own tests expect exactly that);
an unknown org, flow or trail is a 404. Each entry is csm's attestation answer plus the fields the CLI
decodes (``kosli_shapes.attestation_fields``): there ``created_at`` is epoch seconds, csm's ISO time is
``created_at_iso``. ``attestation_id`` is csm's id as a string."""

from django.db.models import Q
from rest_framework.response import Response

from csm.api.errors import invalid
from evidence import selectors
from evidence.api import kosli_shapes
from evidence.api.serializers import attestation_dict
from evidence.api.views import LIST, READ, AttestationsView, EvidenceView
from evidence.models import Attestation

MAX_ID_DIGITS = 18


def _rows(queryset):
    return list(queryset.select_related("flow", "trail", "artifact", "custom_type", "leaf")
                .prefetch_related("evidence_links__evidence_file__org", "evidence_links__evidence_file__leaf")
                .order_by("-created_at", "-id"))


def _answer(request, org, attestations) -> list[dict]:
    return [{**attestation_dict(a), **kosli_shapes.attestation_fields(request, org, a)} for a in attestations]


class TrailAttestationView(AttestationsView):
    """``GET``: the trail's own attestations named ``name`` (not those about its artifacts: the CLI asks for
    those with ``--fingerprint``). ``POST``: ``kosli attest <type>`` (``AttestationsView``)."""

    @LIST
    def get(self, request, org, flow, trail, kind):
        trail = self.trail(self.flow(flow), trail)
        attestations = _rows(Attestation.objects.for_org(self.org).filter(
            trail=trail, name=kind, artifact__isnull=True, target_artifact="", artifact_fingerprint=""))
        return Response(_answer(request, self.org, attestations))


class ArtifactAttestationView(EvidenceView):
    """The attestations named ``name`` about the artifact ``fingerprint`` in ``flow``, on any of its trails:
    bound to a report of it, or attested by fingerprint before it was reported."""

    permission = "evidence.view"

    @LIST
    def get(self, request, org, flow, fingerprint, name):
        flow = self.flow(flow)
        fingerprint = selectors.resolve_fingerprint(self.org, flow, fingerprint)
        attestations = _rows(Attestation.objects.for_org(self.org).filter(flow=flow, name=name).filter(
            Q(artifact__fingerprint=fingerprint) | Q(artifact__isnull=True, artifact_fingerprint=fingerprint)))
        return Response(_answer(request, self.org, attestations))


class AttestationByIdView(EvidenceView):
    """``?attestation_id=``: the one attestation with that id, as ``{"data": [entry]}``; ``{"data": []}``
    when the org has none with that id (an id that is not a number included, as kosli answers an unknown
    id). Without ``attestation_id``: 400 naming it."""

    permission = "evidence.view"

    @READ
    def get(self, request, org):
        value = request.query_params.get("attestation_id")
        if value is None or not value.strip():
            raise invalid("attestation_id is required: GET /api/v2/attestations/{org}?attestation_id=ID",
                          {"attestation_id": ["required"]})
        value = value.strip()
        attestations = []
        if value.isascii() and value.isdecimal() and len(value) <= MAX_ID_DIGITS:
            attestations = _rows(Attestation.objects.for_org(self.org).filter(pk=int(value)))
        return Response({"data": _answer(request, self.org, attestations)})
