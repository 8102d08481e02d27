"""Policy API, on the paths the kosli CLI calls (``kosli create policy``, ``kosli attach-policy``,
``kosli assert artifact``) plus the allowlist and compliance-over-time reads."""


from django.conf import settings
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from audit.context import AuditContext
from csm.api.base import OrgScopedAPIView
from csm.api.errors import ApiError, invalid
from csm.api.kosli import compliant_for, is_kosli_cli
from csm.lib.fingerprints import is_fingerprint
from evidence.models import Flow, Trail
from policies import gates, selectors, services
from policies.api.serializers import (
    AllowlistEntryInputSerializer,
    AllowlistEntrySerializer,
    PolicyDetailSerializer,
    PolicyNamesSerializer,
    PolicySerializer,
    PolicyUploadSerializer,
    SnapshotComplianceSerializer,
)
from policies.models import AllowlistEntry, Policy, PolicyInput, PolicyVersion
from policies.parsing import PolicyError
from snapshots.models import Environment


def policy_error(error: PolicyError, field: str = "policy_file") -> ApiError:
    problems = [str(problem) for problem in error.problems]
    return invalid(f"Invalid policy: {problems[0]}", {field: problems})


def kosli_policy(data: dict) -> dict:
    """A policy as ``kosli get policy`` / ``kosli list policies`` read it: ``created_at`` goes through the
    CLI's ``formattedTimestamp``, which takes a number (or a numeric string), never an ISO time; versions
    oldest first, the latest last."""
    moment = parse_datetime(data["created_at"]) if isinstance(data.get("created_at"), str) else None
    return {**data, "created_at": moment.timestamp() if moment else data.get("created_at")}


class EnvironmentMixin:
    def get_environment(self, name: str) -> Environment:
        return get_object_or_404(Environment.objects.for_org(self.org), name=name)


class PolicyListView(OrgScopedAPIView):
    """``PUT`` creates a policy or a new version (multipart ``payload`` + ``policy_file``); ``GET`` lists."""

    permission = {"GET": "policies.view", "default": "policies.manage"}
    parser_classes = [MultiPartParser, FormParser]
    error_statuses = (409,)

    @extend_schema(responses=PolicySerializer(many=True))
    def get(self, request, org):
        policies = Policy.objects.for_org(self.org).order_by("name")
        if is_kosli_cli(request):  # listPolicies.go counts each policy's versions
            oldest_first = Prefetch("versions", queryset=PolicyVersion.objects.order_by("version"))
            policies = policies.prefetch_related(oldest_first)
            return Response([kosli_policy(row) for row in PolicyDetailSerializer(policies, many=True).data])
        return Response(PolicySerializer(policies, many=True).data)

    @extend_schema(request=PolicyUploadSerializer, responses={200: PolicySerializer, 201: PolicySerializer})
    def put(self, request, org):
        upload = PolicyUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        payload = upload.validated_data["payload"]
        # one byte more than allowed is enough for the parser to say "too large"
        policy_file = upload.validated_data["policy_file"]
        content = policy_file.read(settings.CSM_POLICY_MAX_BYTES + 1)
        policy_format = payload.get("format") or ("rego" if (policy_file.name or "").endswith(".rego") else None)
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("The policy file is not UTF-8 text.", {"policy_file": ["not UTF-8 text"]}) from None
        try:
            policy, version, created = services.save_policy(
                AuditContext.from_request(request), self.org, payload["name"], text,
                description=payload["description"], comment=payload["comment"], policy_type=payload["type"],
                policy_format=policy_format,
            )
        except PolicyError as error:
            raise policy_error(error) from None
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(PolicySerializer(policy).data, status=code)


class PolicyDetailView(OrgScopedAPIView):
    permission = "policies.view"

    @extend_schema(responses=PolicyDetailSerializer)
    def get(self, request, org, name):
        kosli = is_kosli_cli(request)  # getPolicy.go prints the LAST version as the latest
        versions = Prefetch("versions", queryset=PolicyVersion.objects.order_by("version" if kosli else "-version"))
        policy = get_object_or_404(Policy.objects.for_org(self.org).prefetch_related(versions), name=name)
        data = PolicyDetailSerializer(policy).data
        return Response(kosli_policy(data) if kosli else data)


class EnvironmentPoliciesView(EnvironmentMixin, OrgScopedAPIView):
    """``kosli attach-policy``: POST attaches, DELETE detaches ``{"policy_names": [...]}``; GET lists."""

    permission = {"GET": "policies.view", "default": "policies.manage"}
    parser_classes = [JSONParser]

    @extend_schema(responses=PolicySerializer(many=True))
    def get(self, request, org, env):
        environment = self.get_environment(env)
        policies = Policy.objects.for_org(self.org).filter(attachments__environment=environment).order_by("name")
        return Response(PolicySerializer(policies, many=True).data)

    def _change(self, request, env, service):
        environment = self.get_environment(env)
        body = PolicyNamesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changed = service(AuditContext.from_request(request), self.org, environment,
                          body.validated_data["policy_names"])
        attached = Policy.objects.for_org(self.org).filter(attachments__environment=environment).order_by("name")
        return changed, [p.name for p in attached]

    @extend_schema(request=PolicyNamesSerializer, responses={200: dict})
    def post(self, request, org, env):
        changed, attached = self._change(request, env, services.attach_policies)
        return Response({"environment": env, "attached": changed, "policies": attached})

    @extend_schema(request=PolicyNamesSerializer, responses={200: dict})
    def delete(self, request, org, env):
        changed, attached = self._change(request, env, services.detach_policies)
        return Response({"environment": env, "detached": changed, "policies": attached})


class AllowlistView(EnvironmentMixin, OrgScopedAPIView):
    """An environment's allowlist: GET lists (``?all=1`` includes removed and expired), PUT adds."""

    permission = {"GET": "policies.view", "default": "policies.manage"}
    parser_classes = [JSONParser]

    @extend_schema(responses=AllowlistEntrySerializer(many=True),
                   parameters=[OpenApiParameter("all", bool, description="include removed and expired entries")])
    def get(self, request, org, env):
        environment = self.get_environment(env)
        entries = AllowlistEntry.objects.for_org(self.org).filter(environment=environment).order_by("-created_at")
        if request.query_params.get("all") not in ("1", "true"):
            entries = [entry for entry in entries if entry.is_active()]
        return Response(AllowlistEntrySerializer(entries, many=True).data)

    @extend_schema(request=AllowlistEntryInputSerializer, responses={201: AllowlistEntrySerializer})
    def put(self, request, org, env):
        environment = self.get_environment(env)
        body = AllowlistEntryInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entry = services.add_allowlist_entry(AuditContext.from_request(request), self.org, environment,
                                             **body.validated_data)
        return Response(AllowlistEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class AllowlistEntryView(EnvironmentMixin, OrgScopedAPIView):
    permission = {"GET": "policies.view", "default": "policies.manage"}

    def _entry(self, env, entry_id):
        environment = self.get_environment(env)
        return get_object_or_404(AllowlistEntry.objects.for_org(self.org), environment=environment, pk=entry_id)

    @extend_schema(responses=AllowlistEntrySerializer)
    def get(self, request, org, env, entry_id):
        return Response(AllowlistEntrySerializer(self._entry(env, entry_id)).data)

    @extend_schema(responses={200: AllowlistEntrySerializer})
    def delete(self, request, org, env, entry_id):
        entry = services.remove_allowlist_entry(AuditContext.from_request(request), self.org,
                                                self._entry(env, entry_id))
        return Response(AllowlistEntrySerializer(entry).data)


class AssertFingerprintView(OrgScopedAPIView):
    """CI gate (``kosli assert artifact``): would the artifact with this fingerprint be compliant in
    ``environment_name`` now, against ``policy_name``, or — with neither, kosli's third scope — against
    the templates of the flows that reported it (``flow_name`` narrows to one flow; an artifact no flow
    reported is then a 404, as kosli answers)?

    ``compliant`` is the answer — ``null`` with ``status: "unknown"`` when no policy applies to the scope
    (nothing was checked; the CLI reads it as not compliant); ``policy_evaluations`` gives each policy's
    rule decisions (the shape ``kosli assert artifact`` prints) and ``reasons_for_incompliance`` says why
    not; ``authorized`` / ``authorization`` say apart whether the artifact may run there. The kosli CLI
    (which reads a boolean) gets ``false`` for unknown (``csm.api.kosli``)."""

    permission = "policies.view"

    @extend_schema(parameters=[
        OpenApiParameter("environment_name", str, required=False),
        OpenApiParameter("policy_name", str, many=True, required=False,
                         description="evaluate against these policies instead of an environment's"),
        OpenApiParameter("flow_name", str, required=False,
                         description="only this flow; with no environment or policy, judge against flow templates"),
    ], responses={200: dict})
    def get(self, request, org, fingerprint):
        if not is_fingerprint(fingerprint):
            raise invalid("The fingerprint must be a lowercase 64-hex SHA-256.",
                          {"fingerprint": ["must be a lowercase 64-hex SHA-256"]})
        env_name = request.query_params.get("environment_name", "")
        policy_names = request.query_params.getlist("policy_name")
        flow_name = request.query_params.get("flow_name", "")
        environment = None
        if env_name:
            environment = Environment.objects.for_org(self.org).filter(name=env_name).first()
            if environment is None:
                raise ApiError(404, "not_found", f"No environment named {env_name!r}.",
                               {"environment_name": ["no such environment"]})
        try:
            answer = selectors.assert_fingerprint(self.org, fingerprint, environment, policy_names, flow_name)
        except selectors.ArtifactNotInFlow as missing:
            raise ApiError(404, "not_found", str(missing), {"fingerprint": ["not in this flow" if flow_name
                                                                             else "no flow reported it"]}) from None
        answer["compliant"] = compliant_for(request, answer["compliant"])  # the CLI reads a boolean
        return Response(answer)


class ComplianceHistoryView(EnvironmentMixin, OrgScopedAPIView):
    """An environment's compliance over time: one row per evaluated snapshot, newest first."""

    permission = "policies.view"

    @extend_schema(responses=SnapshotComplianceSerializer(many=True),
                   parameters=[OpenApiParameter("limit", int, description="at most this many (default 100)")])
    def get(self, request, org, env):
        environment = self.get_environment(env)
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", 100))))
        except ValueError:
            raise invalid("limit must be an integer.", {"limit": ["must be an integer"]}) from None
        rows = selectors.compliance_history(environment, limit=limit)
        return Response(SnapshotComplianceSerializer(rows, many=True).data)


class FlowPoliciesView(OrgScopedAPIView):
    """A flow's Rego gates: POST attaches, DELETE detaches ``{"policy_names": [...]}``; GET lists."""

    permission = {"GET": "policies.view", "default": "policies.manage"}
    parser_classes = [JSONParser]

    def get_flow(self, name: str) -> Flow:
        return get_object_or_404(Flow.objects.for_org(self.org), name=name)

    def _attached(self, flow) -> list[str]:
        return list(Policy.objects.for_org(self.org).filter(flow_attachments__flow=flow).order_by("name")
                    .values_list("name", flat=True))

    @extend_schema(responses=PolicySerializer(many=True))
    def get(self, request, org, flow):
        flow = self.get_flow(flow)
        policies = Policy.objects.for_org(self.org).filter(flow_attachments__flow=flow).order_by("name")
        return Response(PolicySerializer(policies, many=True).data)

    def _change(self, request, flow, service):
        flow = self.get_flow(flow)
        body = PolicyNamesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changed = service(AuditContext.from_request(request), self.org, flow, body.validated_data["policy_names"])
        return changed, self._attached(flow)

    @extend_schema(request=PolicyNamesSerializer, responses={200: dict})
    def post(self, request, org, flow):
        changed, attached = self._change(request, flow, services.attach_flow_policies)
        return Response({"flow": flow, "attached": changed, "policies": attached})

    @extend_schema(request=PolicyNamesSerializer, responses={200: dict})
    def delete(self, request, org, flow):
        changed, attached = self._change(request, flow, services.detach_flow_policies)
        return Response({"flow": flow, "detached": changed, "policies": attached})


class PolicyInputView(OrgScopedAPIView):
    """``GET`` a Rego input a stored decision names (by ``input_sha256``): the exact JSON the policy got,
    to re-run the decision offline (``opa eval`` / ``kosli evaluate input``)."""

    permission = "policies.view"

    @extend_schema(responses=dict)
    def get(self, request, org, sha256):
        if not is_fingerprint(sha256):
            problem = "must be a lowercase 64-hex SHA-256"
            raise invalid(f"sha256 {problem}.", {"sha256": [problem]})
        found = get_object_or_404(PolicyInput.objects.for_org(self.org), sha256=sha256)
        return Response(found.document)


class TrailDecisionsView(OrgScopedAPIView):
    """``GET`` the policy decisions recorded on a trail, newest first: csm's gate decisions and the
    ``kosli evaluate trail`` results clients attested."""

    permission = "policies.view"

    @extend_schema(responses=dict)
    def get(self, request, org, flow, trail):
        flow = get_object_or_404(Flow.objects.for_org(self.org), name=flow)
        trail = get_object_or_404(Trail.objects.for_org(self.org), flow=flow, name=trail)
        decisions = []
        for item in gates.trail_decisions(trail):
            attestation = item.pop("attestation")
            decisions.append({**item, "attestation_name": attestation.name, "attestation_id": attestation.pk,
                              "is_compliant": attestation.is_compliant, "created_at": attestation.created_at})
        return Response({"flow": flow.name, "trail": trail.name, "decisions": decisions})
