"""Snapshot journal API, on the paths and payloads the kosli CLI uses (see docs/snapshots.md)."""

import re

import msgspec
from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from audit.context import AuditContext
from audit.services import record_denied_access
from csm.api.base import OrgScopedAPIView, body_names
from csm.api.errors import ApiError, input_error, invalid
from csm.api.kosli import compliant_for, is_kosli_cli
from csm.api.schema import JSON_LIST, JSON_LIST_OR_PAGE
from csm.errors import ServiceError
from csm.lib.bounded import InputError, parse_int, parse_page
from snapshots import hooks, selectors
from snapshots.api.serializers import (
    EnvironmentAuthorizationSerializer,
    EnvironmentInputSerializer,
    environment_data,
    event_data,
    unix,
)
from snapshots.choices import EnvironmentType
from snapshots.filters import EnvironmentFilterSet, EventFilterSet, kosli_environment_filter
from snapshots.models import Environment, Report, SnapshotEvent
from snapshots.report_bodies import BadEncoding, BodyTooLarge, ReportInvalid, read_body
from snapshots.services.environments import (
    AUTHORIZATION_PERMISSION,
    EDIT_PERMISSION,
    create_or_update_environment,
    join_environment,
    rename_environment,
    set_environment_archived,
    set_environment_authorization,
)
from snapshots.services.reports import accept_report, report_answer

HEX = re.compile(r"^[0-9a-f]+$")


class SnapshotJSONRenderer(JSONRenderer):
    """DRF's compact JSON, byte for byte (UTF-8, DRF's datetime format, U+2028/U+2029 escaped, other
    types through DRF's encoder), encoded by msgspec: a 10,000-artifact snapshot is several MB of JSON,
    and the standard encoder's per-object Python calls were a third of such a read. An ``indent``
    request still goes through DRF's renderer."""

    _encoder = msgspec.json.Encoder(enc_hook=JSONEncoder().default, decimal_format="number")

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        body = self._encoder.encode(data)
        # U+2028/U+2029 are E2 80 A8/A9 in UTF-8. Most answers have no E2 byte at all, and looking for one
        # byte (memchr) is ~50x faster than the two replace() scans for three (~6 ms on a 3.5 MB answer).
        if b"\xe2" in body:
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body


SNAPPISH_ENV = re.compile(r"[^#~@]*")  # the environment name a snappish starts with


def not_found(error: Exception) -> ApiError:
    return ApiError(404, "not_found", str(error))


def paginate(request, total: int, default: int = 15) -> tuple[int, int, dict]:
    """``page`` / ``per_page`` (kosli's list paging: a plain JSON array, totals in headers). ASCII digits
    only, page at most csm.lib.bounded.MAX_PAGE: an OFFSET past a bigint was a database error (a 500)."""
    params = request.query_params
    try:
        page = parse_page(params.get("page"), "page")
        per_page = parse_int(params.get("per_page") or default, "per_page", minimum=1, maximum=500)
    except InputError as error:
        raise input_error(error) from None
    return page, per_page, {"X-Total-Count": str(total), "X-Page": str(page), "X-Per-Page": str(per_page)}


class EnvironmentScoped(OrgScopedAPIView):
    def get_environment(self, name: str) -> Environment:
        """The environment named so now or before a rename (``selectors.environment_or_404``: kosli's 404
        words)."""
        return selectors.environment_or_404(self.org, name)


class EnvironmentListView(EnvironmentScoped):
    """``GET`` lists the org's environments; ``PUT`` creates or updates one (idempotent)."""

    permission = {"GET": "environments.view", "default": "environments.report"}
    error_statuses = (409,)

    def scope_names(self, request, kwargs):
        """A PUT names the environment (and a logical one its members) in the body."""
        environments, flows = super().scope_names(request, kwargs)
        if request.method == "PUT" and hasattr(request.data, "get"):
            environments += body_names(request.data, "name", "included_environments")
        return environments, flows

    @extend_schema(responses={200: JSON_LIST_OR_PAGE}, parameters=[
        OpenApiParameter("archived", bool, description="include archived environments"),
        *[OpenApiParameter(name, str) for name in ("name", "type", "tag", "sort", "sort_direction", "page",
                                                   "per_page")]])
    def get(self, request, org):
        """A plain array of every environment (``kosli list environments`` without --page / --page-limit);
        with ``page`` or ``per_page`` kosli's paginated object ``{page, per_page, total_pages, total_count,
        environments}``. Filters and order: ``kosli_environment_filter``."""
        params = request.query_params
        queryset = self.limit_to_token_scope(Environment.objects.for_org(self.org), environment_field="name")
        queryset = EnvironmentFilterSet(params, queryset=queryset).qs_or_400()
        try:
            queryset = kosli_environment_filter(queryset, params)
        except InputError as error:
            raise input_error(error) from None
        queryset = queryset.prefetch_related("included_environments")
        paged = "page" in params or "per_page" in params
        if paged:
            total = queryset.count()
            page, per_page, headers = paginate(request, total)
            envs = list(queryset[(page - 1) * per_page: page * per_page])
        else:
            envs = list(queryset)
        extra = hooks.enrich_environments(self.org, envs)
        rows = [environment_data(e, [m.name for m in e.included_environments.all()], extra.get(e.pk)) for e in envs]
        if not paged:
            return Response(rows)
        return Response({"page": page, "per_page": per_page, "total_pages": -(-total // per_page),
                         "total_count": total, "environments": rows}, headers=headers)

    @extend_schema(request=EnvironmentInputSerializer, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def put(self, request, org):
        body = EnvironmentInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        wanted = data["require_authorization"]
        if wanted is not None:  # refused before anything is written: nothing half-done
            named = selectors.environment_named(self.org, data["name"])
            current = named.require_authorization if named is not None else None
            if wanted != (True if current is None else current):
                _check_authorization_change(request, self.org, self.org_access, data["authorization_reason"])
        try:
            env, created = create_or_update_environment(
                AuditContext.from_request(request), self.org, data["name"], data["type"], data["description"],
                data["include_scaling"], data["included_environments"], data["tags"],
                data["expected_report_interval_seconds"],
                may_change_existing=self.org_access.can(EDIT_PERMISSION), change_windows=data["change_windows"],
                change_window_tz=data["change_window_tz"])
        except ServiceError as error:
            if error.status == 403:  # the write rolled back; the refusal is audited in its own transaction
                record_denied_access(AuditContext.from_request(request), self.org, EDIT_PERMISSION,
                                     request.path)
            raise
        if data["require_authorization"] is not None and data["require_authorization"] != env.require_authorization:
            env = _set_authorization(request, self.org, self.org_access, env, data["require_authorization"],
                                     data["authorization_reason"])
        members = sorted(e.name for e in env.included_environments.all())
        return Response(environment_data(env, members, hooks.enrich_environments(self.org, [env]).get(env.pk)),
                        status=status.HTTP_201_CREATED if created else 200)


def _check_authorization_change(request, org, org_access, reason: str) -> None:
    if not org_access.can(AUTHORIZATION_PERMISSION):
        record_denied_access(AuditContext.from_request(request), org, AUTHORIZATION_PERMISSION, request.path)
        raise ServiceError(f"Relaxing or requiring authorization needs the permission '{AUTHORIZATION_PERMISSION}'.",
                           "require_authorization", 403, "permission_denied")
    if not (reason or "").strip():
        raise ServiceError("Say why authorization is relaxed or required (authorization_reason).",
                           "authorization_reason")


def _set_authorization(request, org, org_access, env: Environment, required: bool, reason: str) -> Environment:
    """Require or relax authorization (org owners and admins only; a refusal is audited)."""
    if not org_access.can(AUTHORIZATION_PERMISSION):
        record_denied_access(AuditContext.from_request(request), org, AUTHORIZATION_PERMISSION, request.path)
        raise ServiceError(f"Relaxing or requiring authorization needs the permission '{AUTHORIZATION_PERMISSION}'.",
                           "require_authorization", 403, "permission_denied")
    return set_environment_authorization(AuditContext.from_request(request), env, required, reason)


def environment_identity(env: Environment) -> dict:
    """What a role with ``environments.identify`` but not ``environments.view`` (a snapshotter) learns of an
    environment: that it exists, its name and type (``kosli snapshot --auto-environment`` reads ``type``
    to refuse a logical or mismatched environment) and whether it is archived — nothing it reported."""
    return {"name": env.name, "type": env.type, "archived": env.archived}


class EnvironmentDetailView(EnvironmentScoped):
    """``GET`` reads an environment (with ``environments.identify`` only — a snapshotter — its identity:
    ``environment_identity``); ``PATCH`` requires or relaxes authorization (``{"require_authorization":
    bool, "reason": str}``, org owners and admins); ``DELETE`` archives it (journal rows are never destroyed)."""

    permission = {"GET": "environments.identify", "default": "environments.manage"}

    def _answer(self, environment) -> dict:
        members = sorted(e.name for e in environment.included_environments.all())
        return environment_data(environment, members, hooks.enrich_environments(self.org, [environment])
                                .get(environment.pk))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, org, env):
        environment = self.get_environment(env)
        if not self.org_access.can("environments.view"):
            return Response(environment_identity(environment))
        return Response(self._answer(environment))

    @extend_schema(request=EnvironmentAuthorizationSerializer, responses=OpenApiTypes.OBJECT)
    def patch(self, request, org, env):
        environment = self.get_environment(env)
        body = EnvironmentAuthorizationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        environment = _set_authorization(request, self.org, self.org_access, environment,
                                         body.validated_data["require_authorization"], body.validated_data["reason"])
        return Response(self._answer(environment))

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def delete(self, request, org, env):
        environment = set_environment_archived(AuditContext.from_request(request),
                                                        self.get_environment(env), True)
        return Response(environment_data(environment))


class EnvironmentArchiveView(EnvironmentScoped):
    """``PUT``/``POST`` .../archive or .../unarchive."""

    permission = "environments.manage"
    archived = True

    def _set(self, request, env):
        environment = set_environment_archived(AuditContext.from_request(request),
                                                        self.get_environment(env), self.archived)
        return Response(environment_data(environment))

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def put(self, request, org, env):
        return self._set(request, env)

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, org, env):
        return self._set(request, env)


class EnvironmentUnarchiveView(EnvironmentArchiveView):
    archived = False


class EnvironmentRenameView(EnvironmentScoped):
    """``PUT``/``POST`` .../rename with ``{"new_name"}`` (kosli ``rename environment``): the old name keeps
    resolving to the environment until another one is renamed to it
    (``snapshots.services.environments.rename_environment``)."""

    permission = "environments.manage"

    def scope_names(self, request, kwargs):
        environments, flows = super().scope_names(request, kwargs)
        return environments + body_names(request.data, "new_name"), flows

    def _rename(self, request, env):
        data = request.data if hasattr(request.data, "get") else {}
        if "new_name" not in data:
            raise invalid("new_name is required", {"new_name": ["required"]})
        environment = rename_environment(AuditContext.from_request(request), self.org, self.get_environment(env),
                                         data.get("new_name"))
        return Response(environment_data(environment, sorted(e.name for e in environment.included_environments.all())))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request, org, env):
        return self._rename(request, env)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request, org, env):
        return self._rename(request, env)


class EnvironmentJoinView(EnvironmentScoped):
    """``PUT``/``POST`` /environments/{org}/{logical}/join with ``{"physical_env_name"}`` (kosli ``join
    environment``): the physical environment becomes a member of the logical one. Changing a logical
    environment's members is an edit of its settings: ``environments.edit``."""

    permission = "environments.edit"

    def scope_names(self, request, kwargs):
        environments, flows = super().scope_names(request, kwargs)
        return environments + body_names(request.data, "physical_env_name"), flows

    def _join(self, request, env):
        data = request.data if hasattr(request.data, "get") else {}
        if "physical_env_name" not in data:
            raise invalid("physical_env_name is required", {"physical_env_name": ["required"]})
        environment = join_environment(AuditContext.from_request(request), self.org, self.get_environment(env),
                                       data.get("physical_env_name"))
        return Response(environment_data(environment, sorted(e.name for e in environment.included_environments.all())))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request, org, env):
        return self._join(request, env)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request, org, env):
        return self._join(request, env)


class ReportView(EnvironmentScoped):
    """``PUT /api/v2/environments/{org}/{env}/report/{TYPE}``: validate, store durably, answer, enqueue.

    The body is streamed (gzip decompressed on the fly) and limited to CSM_REPORT_MAX_BYTES after
    decompression. ``Idempotency-Key``: the same key and body answer like the first time; the same key
    with another body is a 422."""

    permission = "environments.report"
    error_statuses = (409, 413, 422)
    parser_classes: list = []

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT}, parameters=[
        OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)])
    def put(self, request, org, env, report_type):
        environment = selectors.environment_named(self.org, env)  # an old name still reports into it
        if environment is None:
            # The first run's usual mistake: say which environment is missing and the two ways to fix it.
            kind = report_type if report_type in EnvironmentType.values else "<TYPE>"
            raise ServiceError(
                f"Environment {env!r} does not exist in org {self.org.slug!r}. Create it with "
                f"PUT /api/v2/environments/{self.org.slug} and the body "
                f'{{"name": "{env}", "type": "{kind}"}}, or run the agent with --auto-environment.',
                field="env", code="not_found")
        if report_type not in EnvironmentType.values:
            raise invalid(f"Unknown report type {report_type!r}; use one of {', '.join(EnvironmentType.values)}.",
                          {"type": ["unknown type"]})
        raw = self._read(request)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 255:
            raise invalid("Idempotency-Key is longer than 255 characters.", {"Idempotency-Key": ["too long"]})
        try:
            report, created = accept_report(AuditContext.from_request(request), environment, report_type,
                                                     raw, key, request.auth if hasattr(request.auth, "pk") else None)
        except ReportInvalid as error:
            raise invalid(error.message, error.fields) from None
        response = Response(report_answer(report), status=status.HTTP_201_CREATED)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    def _read(self, request) -> bytes:
        limit = settings.CSM_REPORT_MAX_BYTES
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            raise invalid(f"Content-Encoding {encoding!r} is not supported; use gzip or none.",
                          {"Content-Encoding": ["unsupported"]})
        gzipped = encoding == "gzip"
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        try:
            if not gzipped and declared > limit:
                raise BodyTooLarge(f"The report body is larger than the limit of {limit} bytes.")
            return read_body(request._request, limit, gzipped)
        except BodyTooLarge as error:
            raise ApiError(413, "too_large", str(error)) from None
        except BadEncoding as error:
            raise invalid(str(error), {"Content-Encoding": [str(error)]}) from None


class ReportStatusView(EnvironmentScoped):
    """``GET .../reports/{id}``: poll what ingesting a report did (pending, snapshot, unchanged...)."""

    permission = "environments.report"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, org, env, report_id):
        environment = self.get_environment(env)
        report = get_object_or_404(Report.objects.for_org(self.org).defer("payload").select_related("outcome"),
                                   environment=environment, pk=report_id)
        answer = report_answer(report)
        # The body itself is never served; retention may have dropped it (hash and size are kept).
        answer["body_dropped_at"] = report.payload_dropped_at
        outcome = getattr(report, "outcome", None)
        if outcome is not None:
            answer.update(status=outcome.status, finished_at=outcome.finished_at,
                          snapshot_index=outcome.snapshot.index if outcome.snapshot_id else None)
        return Response(answer)


def snapshot_answer(org, snapshot, artifacts: list[dict]) -> dict:
    env = snapshot.environment
    rows = selectors.snapshot_rows(env, snapshot.index, snapshot.index)
    next_at = rows[0].next_at if rows else None
    journal_index = rows[0].journal_index if rows else snapshot.leaf.index
    # Provenance (artifact enrichers) and per-snapshot fields from the snapshot enrichers (policies:
    # compliant, applied_policies, and per artifact compliant / policy_decisions / reasons_for_incompliance),
    # merged over the defaults below.
    top = hooks.enrich_artifacts(org, artifacts, snapshot)
    if "compliant" in top:
        compliant = top["compliant"]
    else:
        compliant = all(a.get("compliant") is not False for a in artifacts if a["annotation"]["now"])
    return {
        "environment": env.name, "type": env.type, "index": snapshot.index, "timestamp": unix(snapshot.created_at),
        "time": snapshot.created_at, "is_latest": snapshot.index == env.last_snapshot_index,
        "next_snapshot_timestamp": unix(next_at), "reason": snapshot.reason,
        "user_name": snapshot.reporter_label, "artifact_count": snapshot.artifact_count,
        "instance_count": snapshot.instance_count, "hash": snapshot.hash, "prev_hash": snapshot.prev_hash,
        "journal_index": journal_index, "changes": {"started": snapshot.started_count, "exited": snapshot.exited_count,
                    "scaled": snapshot.scaled_count},
        "outside_change_window": snapshot.outside_change_window,
        "compliant": compliant, "artifacts": artifacts,
    } | top


class SnapshotDetailView(EnvironmentScoped):
    """``GET /api/v2/snapshots/{org}/{env}/{id}``: id is -1, #N, N, ~N, @{ISO time} or @{N.days.ago}."""

    permission = "environments.view"
    renderer_classes = [SnapshotJSONRenderer]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, org, env, snappish):
        environment = self.get_environment(env)
        if environment.is_logical:
            if snappish not in ("-1", "latest", ""):
                raise invalid("A logical environment has no snapshots of its own; only -1 (the union of its "
                              "members' latest snapshots) can be read.", {"id": ["only -1"]})
            artifacts = selectors.logical_artifacts(environment)
            hooks.enrich_artifacts(self.org, artifacts)
            return Response({"environment": environment.name, "type": environment.type, "index": None,
                             "is_latest": True, "artifacts": artifacts})
        try:
            snapshot = selectors.resolve_snapshot(environment, snappish)
        except selectors.BadSnappish as error:
            raise invalid(str(error), {"id": [str(error)]}) from None
        except selectors.SnapshotNotFound as error:
            raise not_found(error) from None
        answer = snapshot_answer(self.org, snapshot, selectors.snapshot_artifacts(snapshot, True))
        answer["compliant"] = compliant_for(request, answer["compliant"])  # the CLI reads a boolean
        return Response(answer)


class SnapshotListView(EnvironmentScoped):
    """``GET /api/v2/snapshots/{org}/{env}``: a JSON array, latest first (``reverse=true``: oldest first),
    ``interval=A..B`` (``~N``, ``N``, ``NOW``), ``page`` / ``per_page``; totals in X-Total-Count."""

    permission = "environments.view"
    renderer_classes = [SnapshotJSONRenderer]

    @extend_schema(responses={200: JSON_LIST}, parameters=[
        OpenApiParameter("interval", str), OpenApiParameter("reverse", bool), OpenApiParameter("page", int),
        OpenApiParameter("per_page", int)])
    def get(self, request, org, env):
        environment = self.get_environment(env)
        latest = environment.last_snapshot_index
        lo, hi = 1, latest
        interval = request.query_params.get("interval", "").strip()
        if interval:
            try:
                lo, hi = selectors.parse_interval(environment, interval)
            except selectors.BadSnappish as error:
                raise invalid(str(error), {"interval": [str(error)]}) from None
            hi = min(hi, latest)
        total = max(hi - lo + 1, 0)
        page, per_page, headers = paginate(request, total)
        reverse = request.query_params.get("reverse", "").lower() in ("1", "true", "yes")
        if reverse:
            start = lo + (page - 1) * per_page
            first, last = start, min(start + per_page - 1, hi)
        else:
            end = hi - (page - 1) * per_page
            first, last = max(end - per_page + 1, lo), end
        rows = selectors.snapshot_rows(environment, first, last) if first <= last else []
        if not reverse:
            rows.reverse()
        now = timezone.now()
        extra = hooks.enrich_snapshot_list(environment, rows)
        data = [{
            "index": s.index, "from": unix(s.created_at), "to": unix(s.next_at) or 0,
            "duration": int(((s.next_at or now) - s.created_at).total_seconds()),
            "artifact_count": s.artifact_count, "instance_count": s.instance_count, "reason": s.reason,
            "changes": {"started": s.started_count, "exited": s.exited_count, "scaled": s.scaled_count},
            "hash": s.hash, "journal_index": s.journal_index, "compliant": None,
        } | extra.get(s.index, {}) for s in rows]
        for row in data:  # the kosli CLI reads a boolean: unknown is false for it (csm.api.kosli)
            row["compliant"] = compliant_for(request, row["compliant"])
        return Response(data, headers=headers)


class EventListView(EnvironmentScoped):
    """``GET /api/v2/environments/{org}/{env}/events``: started / exited / scaled, filtered by ``from`` / ``to``
    (ISO times), ``snapshot_from`` / ``snapshot_to`` (indexes), ``kind``, ``fingerprint`` and what ``kosli log
    environment`` sends (``selectors.kosli_event_range``): ``interval``, ``start`` / ``end``, ``start_ts`` /
    ``end_ts``. Oldest first; with ``reverse`` (the CLI always sends it) kosli's order: ``false`` latest
    first, ``true`` oldest first."""

    permission = "environments.view"

    @extend_schema(responses={200: JSON_LIST}, parameters=[
        OpenApiParameter(name, str) for name in ("from", "to", "snapshot_from", "snapshot_to", "kind",
                                                 "fingerprint", "page", "per_page", "interval", "start", "end",
                                                 "start_ts", "end_ts", "reverse")])
    def get(self, request, org, env):
        environment = self.get_environment(env)
        params = request.query_params
        try:
            where = selectors.kosli_event_range(environment, params, timezone.now())
            latest_first = _reverse_param(params) is False
        except InputError as error:
            raise input_error(error) from None
        events = EventFilterSet(params, queryset=SnapshotEvent.objects.for_org(self.org)
                                .filter(environment=environment).filter(where)).qs_or_400()
        total = events.count()
        page, per_page, headers = paginate(request, total, default=100)
        order = ("-snapshot_index", "-id") if latest_first else ("snapshot_index", "id")
        rows = events.order_by(*order)[(page - 1) * per_page: page * per_page]
        return Response([event_data(e) for e in rows], headers=headers)


def _reverse_param(params) -> bool | None:
    """``reverse`` as Go's ``strconv.FormatBool`` writes it (also 1/0, yes/no); None when absent."""
    text = (params.get("reverse") or "").strip().lower()
    if not text:
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InputError("reverse must be true or false", "reverse")


class EnvDiffView(OrgScopedAPIView):
    """``GET /api/v2/env-diff/{org}?snappish1=ENV#N&snappish2=ENV2~M[&include_unchanged=true]``."""

    permission = "environments.view"
    renderer_classes = [SnapshotJSONRenderer]

    def scope_names(self, request, kwargs):
        """Both snappishes name an environment (``ENV``, ``ENV#N``, ``ENV~N``, ``ENV@{time}``)."""
        environments, flows = super().scope_names(request, kwargs)
        for field in ("snappish1", "snappish2"):
            name = SNAPPISH_ENV.match(request.query_params.get(field, "").strip()).group(0)
            environments += [name] if name else []
        return environments, flows

    @extend_schema(responses=OpenApiTypes.OBJECT, parameters=[
        OpenApiParameter("snappish1", str, required=True), OpenApiParameter("snappish2", str, required=True),
        OpenApiParameter("include_unchanged", bool)])
    def get(self, request, org):
        snapshots = []
        for field in ("snappish1", "snappish2"):
            text = request.query_params.get(field, "").strip()
            if not text:
                raise invalid(f"{field} is required (ENV, ENV#N, ENV~N or ENV@{{time}}).", {field: ["required"]})
            try:
                env, rest = selectors.parse_environment_snappish(self.org, text)
                if env.is_logical:
                    raise selectors.BadSnappish(f"{env.name!r} is a logical environment and has no snapshots.")
                snapshots.append(selectors.resolve_snapshot(env, rest or "-1"))
            except selectors.BadSnappish as error:
                raise invalid(str(error), {field: [str(error)]}) from None
            except selectors.SnapshotNotFound as error:
                raise ApiError(404, "not_found", f"{field}: {error}") from None
        include = request.query_params.get("include_unchanged", "").lower() in ("1", "true", "yes")
        kosli = is_kosli_cli(request)
        diff = selectors.diff_snapshots(*snapshots, include_unchanged=include or kosli, pair_upgrades=not kosli)
        everything = diff["only_in_1"] + diff["only_in_2"] + diff["changed"] + diff["scaled"] + diff.get(
            "unchanged", [])
        hooks.enrich_artifacts(self.org, everything)
        if kosli:
            # `kosli diff snapshots` (diffSnapshots.go DiffSnapshotsResponse) has no upgrades: an upgraded
            # artifact is its old fingerprint only in 1 and its new one only in 2; its "changed" is what
            # scaled, printed as "scaling"; "not-changed" is always there (--show-unchanged only filters
            # what the CLI prints, it sends no parameter).
            return Response({
                "snappish1": {**diff["snapshot1"], "artifacts": diff["only_in_1"]},
                "snappish2": {**diff["snapshot2"], "artifacts": diff["only_in_2"]},
                "changed": {"artifacts": diff["scaled"]},
                "not-changed": {"artifacts": diff["unchanged"]},
            })
        answer = {
            "snappish1": {**diff["snapshot1"], "artifacts": diff["only_in_1"]},
            "snappish2": {**diff["snapshot2"], "artifacts": diff["only_in_2"]},
            "changed": {"artifacts": diff["changed"]},
            "scaled": {"artifacts": diff["scaled"]},
        }
        if include:
            answer["not_changed"] = {"artifacts": diff["unchanged"]}
        return Response(answer)


class SearchView(OrgScopedAPIView):
    """``GET /api/v2/search/{org}/sha/{prefix}`` (``kosli search``): at least 5 hex characters naming a
    running artifact's fingerprint or a reported artifact's git commit; an ambiguous fingerprint prefix →
    400 with candidates. Besides csm's fields the answer carries kosli's ``resolved_to`` and ``artifacts``."""

    permission = "environments.view"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, org, prefix):
        result = selectors.search(self.org, prefix)
        prefix, candidates, extra = result["prefix"], result["candidates"], result["extra"]
        if len(candidates) > 1:
            shown = candidates[:20]
            raise invalid(f"{prefix!r} matches {'more than 20' if len(candidates) > 20 else len(candidates)} "
                          "fingerprints; give more characters.",
                          {"prefix": ["ambiguous"], "candidates": shown})
        if not candidates and not extra:
            raise ApiError(404, "not_found", f"No artifact fingerprint starts with {prefix!r}.")
        answer = {"prefix": prefix, "fingerprint": None, "artifact_names": [], "running_now": [], "history": [],
                  "matches": extra}
        if candidates:
            fingerprint = result["fingerprint"]
            answer.update(fingerprint=fingerprint, artifact_names=result["names"],
                          running_now=result["running_now"], history=result["history"])
            answer.update(hooks.enrich(self.org, {fingerprint}).get(fingerprint, {}))
        answer.update(selectors.kosli_search(self.org, result))  # what `kosli search` reads
        return Response(answer)

