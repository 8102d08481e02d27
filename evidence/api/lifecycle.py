"""Flow lifecycle and org-wide lists on the kosli CLI's paths:

- ``PUT|POST /api/v2/flows/{org}/{flow}/archive`` (kosli ``archive flow``; the CLI sends PUT with the body
  ``null``) and ``.../unarchive`` (csm's own; kosli has no unarchive command);
- ``PUT|POST /api/v2/flows/{org}/{flow}/rename`` with ``{"new_name"}`` (kosli ``rename flow``);
- ``GET /api/v2/trails/{org}?flow&fingerprint&flow_tag&page&per_page`` (kosli ``list trails``): kosli's
  ``{"data": [...], "pagination": {page, page_count, total}}``;
- ``GET /api/v2/artifacts/{org}?flow_name|repo_name&page&per_page`` (kosli ``list artifacts``): a plain array;
- ``GET /api/v2/artifacts/{org}/{flow}/commit_sha/{sha}?trail=`` (kosli ``get artifact FLOW:COMMIT``): an
  array of artifact answers, one per artifact the flow built from that commit.
"""

import re

from django.db.models.fields.json import KeyTextTransform
from rest_framework.response import Response

from csm.api.base import body_names
from csm.api.errors import ApiError, input_error, invalid
from csm.api.kosli import is_kosli_cli
from csm.errors import ServiceError
from csm.lib.bounded import InputError, parse_int, parse_page
from csm.lib.fingerprints import is_fingerprint
from evidence import lifecycle, selectors
from evidence.api import kosli_shapes
from evidence.api.serializers import artifact_dict, flow_dict, trail_dict
from evidence.api.views import LIST, READ, WRITE, EvidenceView, artifact_answer
from evidence.models import Artifact, Trail
from snapshots.selectors import epoch

MAX_PER_PAGE = 100  # each row carries its compliance, computed per row
MAX_COMMIT_ARTIFACTS = 100
COMMIT = re.compile(r"^[0-9a-f]{5,64}$")
# kosli's list printer slices git_commit[:7]; an artifact reported without a commit would crash it.
NO_COMMIT = "unknown"


def _paging(request, default: int) -> tuple[int, int]:
    params = request.query_params
    try:
        page = parse_page(params.get("page"), "page")
        per_page = parse_int(params.get("per_page") or default, "per_page", minimum=1, maximum=MAX_PER_PAGE)
    except InputError as error:
        raise input_error(error) from None
    return page, per_page


class FlowArchiveView(EvidenceView):
    """Archive a flow: hidden from ``GET /flows`` (unless ``?archived=true``), still readable by name, and
    refusing new trails, artifacts and attestations (400 naming the flow). Nothing is deleted."""

    permission = "evidence.manage"
    archived = True

    def _set(self, request, flow):
        flow = lifecycle.set_flow_archived(self.ctx(), self.org, self.flow(flow), self.archived)
        return Response(flow_dict(flow))

    @WRITE
    def put(self, request, org, flow):
        return self._set(request, flow)

    @WRITE
    def post(self, request, org, flow):
        return self._set(request, flow)


class FlowUnarchiveView(FlowArchiveView):
    archived = False


class FlowRenameView(EvidenceView):
    """``{"new_name": "..."}`` (kosli ``RenameFlowPayload``). The old name keeps resolving to the flow
    until another flow is renamed to it (``evidence.lifecycle.rename_flow``)."""

    permission = "evidence.manage"

    def scope_names(self, request, kwargs):
        environments, flows = super().scope_names(request, kwargs)
        return environments, flows + body_names(request.data, "new_name")

    def _rename(self, request, flow):
        data = request.data if hasattr(request.data, "get") else {}
        if "new_name" not in data:
            raise invalid("new_name is required", {"new_name": ["required"]})
        flow = lifecycle.rename_flow(self.ctx(), self.org, self.flow(flow), data.get("new_name"))
        return Response(flow_dict(flow))

    @WRITE
    def put(self, request, org, flow):
        return self._rename(request, flow)

    @WRITE
    def post(self, request, org, flow):
        return self._rename(request, flow)


def trail_state(trail) -> str:
    """kosli's ``compliance_state`` of a trail (COMPLIANT / NON-COMPLIANT / INCOMPLETE)."""
    compliance = selectors.trail_compliance(trail)
    return kosli_shapes.state_of(compliance["compliant"], compliance["attestations"] + [
        entry for record in compliance["artifacts"] for entry in record["attestations"]])


class OrgTrailsView(EvidenceView):
    """kosli ``list trails``: the org's trails, newest first, filtered by ``flow`` (its current or former
    name), ``fingerprint`` (trails that reported that artifact) and ``flow_tag`` (``key=value``), all of
    them at once. Without ``flow``, trails of archived flows are left out. Each row: csm's trail fields
    plus ``compliance_state`` and ``flow_name``."""

    scope_flow_params = ("flow",)

    @READ
    def get(self, request, org):
        params = request.query_params
        page, per_page = _paging(request, 20)
        trails = self.limit_to_token_scope(Trail.objects.for_org(self.org).select_related("flow"),
                                           flow_field="flow__name")
        if params.get("flow"):
            trails = trails.filter(flow=self.flow(params["flow"]))
        else:
            trails = trails.filter(flow__archived=False)
        if params.get("fingerprint"):
            fingerprint = params["fingerprint"].strip().lower()
            if not is_fingerprint(fingerprint):
                raise invalid("fingerprint must be a SHA-256 digest (64 hex digits)",
                              {"fingerprint": ["not a SHA-256"]})
            trails = trails.filter(artifacts__fingerprint=fingerprint).distinct()
        if params.get("flow_tag"):
            key, sep, value = params["flow_tag"].partition("=")
            if not sep or not key:
                raise invalid("flow_tag must be in the format of key=value", {"flow_tag": ["not key=value"]})
            trails = trails.alias(tag_value=KeyTextTransform(key, "flow__tags")).filter(tag_value=value)
        trails = trails.order_by("-created_at", "-id")
        total = trails.count()
        rows = []
        for trail in trails[(page - 1) * per_page: page * per_page]:
            row = trail_dict(trail)
            row.update(flow_name=trail.flow.name, compliance_state=trail_state(trail),
                       created_at_iso=trail.created_at, created_at=epoch(trail.created_at))
            rows.append(row)
        return Response({"data": rows, "pagination": {"page": page, "per_page": per_page,
                                                      "page_count": -(-total // per_page), "total": total}})


def artifact_row(request, org, artifact: Artifact) -> dict:
    """One row of kosli ``list artifacts``: csm's artifact fields plus what the CLI's table reads
    (``git_commit`` (it prints the first 7 characters), ``filename``, ``fingerprint``, ``state``, and
    ``created_at`` as epoch seconds; csm's ISO time is ``created_at_iso``), ``flow_name``, ``trail_name``."""
    record = selectors.artifact_record_compliance(artifact)
    row = artifact_dict(artifact)
    row.update(flow_name=artifact.flow.name, trail_name=artifact.trail.name if artifact.trail_id else None,
               state=kosli_shapes.state_of(record["compliant"], record["attestations"]),
               is_compliant=record["compliant"], created_at_iso=artifact.created_at,
               created_at=epoch(artifact.created_at))
    if is_kosli_cli(request) and len(row["git_commit"] or "") < 7:
        row["git_commit"] = NO_COMMIT
    return row


class OrgArtifactsView(EvidenceView):
    """kosli ``list artifacts``: artifacts newest first, of the flow ``flow_name`` (current or former name),
    or of the repository ``repo_name`` (the ``repo_info.name`` the CLI reported with the artifact), or of
    every flow that is not archived; ``page`` / ``per_page`` (default 15, at most 100)."""

    scope_flow_params = ("flow_name",)

    @LIST
    def get(self, request, org):
        params = request.query_params
        page, per_page = _paging(request, 15)
        artifacts = Artifact.objects.for_org(self.org).select_related("flow", "trail", "leaf")
        artifacts = self.limit_to_token_scope(artifacts, flow_field="flow__name")
        if params.get("flow_name"):
            artifacts = artifacts.filter(flow=self.flow(params["flow_name"]))
        elif params.get("repo_name"):
            name = params["repo_name"]
            artifacts = artifacts.alias(repo_name=KeyTextTransform("name", "repo_info")).filter(repo_name=name)
            if not artifacts.exists():
                raise ApiError(404, "not_found", f"Repo '{name}' not found: no artifact was reported from it")
        else:
            artifacts = artifacts.filter(flow__archived=False)
        artifacts = artifacts.order_by("-created_at", "-id")[(page - 1) * per_page: page * per_page]
        return Response([artifact_row(request, self.org, artifact) for artifact in artifacts])


class ArtifactsByCommitView(EvidenceView):
    """kosli ``get artifact FLOW:COMMIT``: every artifact ``flow`` built from the git commit ``sha`` (the full
    sha or a unique prefix of at least 5 hex digits), newest first, each as ``get artifact`` answers it;
    ``?trail=`` keeps that trail's. A prefix matching two commits is a 400 naming them (not a 409, which
    the CLI retries), no match a 404."""

    @LIST
    def get(self, request, org, flow, sha):
        flow = self.flow(flow)
        prefix = sha.strip().lower()
        if not COMMIT.match(prefix):
            raise invalid("commit_sha must be 5 to 64 hex digits (a git commit or a unique prefix of one)",
                          {"commit_sha": ["not a git commit"]})
        trail = request.query_params.get("trail")
        artifacts = Artifact.objects.for_org(self.org).filter(flow=flow, git_commit__startswith=prefix)
        if trail:
            artifacts = artifacts.filter(trail__name=trail)
        commits = list(artifacts.order_by("git_commit").values_list("git_commit", flat=True).distinct()[:6])
        if not commits:
            where = f" in trail '{trail}'" if trail else ""
            raise ServiceError(f"Artifact with commit '{prefix}' does not exist in flow '{flow.name}'{where}",
                               "commit_sha", code="not_found")
        if len(commits) > 1:
            listed = ", ".join(commits[:5]) + (", ..." if len(commits) > 5 else "")
            raise invalid(f"Commit prefix '{prefix}' is ambiguous in flow '{flow.name}': it matches {listed}. "
                          "Give more digits.", {"commit_sha": ["ambiguous"]})
        fingerprints = []
        for fingerprint in (artifacts.filter(git_commit=commits[0]).order_by("-created_at", "-id")
                            .values_list("fingerprint", flat=True)):
            if fingerprint not in fingerprints:
                fingerprints.append(fingerprint)
            if len(fingerprints) == MAX_COMMIT_ARTIFACTS:
                break
        return Response([artifact_answer(request, self.org, flow, fingerprint, trail) for fingerprint in fingerprints])
