from django.conf import settings
from rest_framework import serializers

from csm.lib.bounded import InputError, load_json
from csm.lib.fingerprints import FINGERPRINT_PATTERN
from policies.models import AllowlistEntry, Policy, PolicyVersion, SnapshotCompliance
from policies.standing import compliance_state

FINGERPRINT_RE = rf"^{FINGERPRINT_PATTERN}\Z"


class PolicyPayloadSerializer(serializers.Serializer):
    """The ``payload`` form field of ``kosli create policy`` (a JSON string)."""

    name = serializers.RegexField(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$", max_length=100, error_messages={
        "invalid": "Use 1-100 lowercase letters, digits and hyphens, not starting or ending with a hyphen."})
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    type = serializers.ChoiceField(choices=["env"], required=False, default="env")
    format = serializers.ChoiceField(choices=["yaml", "rego"], required=False, default=None, allow_null=True,
                                     help_text="yaml (default for a new policy) or rego; a .rego file name means rego")


class PolicyUploadSerializer(serializers.Serializer):
    payload = serializers.CharField(help_text='JSON: {"name", "description", "comment", "type": "env", "format"}')
    policy_file = serializers.FileField(help_text="The policy: kosli YAML, or Rego (package policy)")

    def validate_payload(self, value):
        try:  # bounded like every JSON body (csm.lib.bounded): a payload nested 50,000 deep was a RecursionError
            data = load_json(value, "payload", max_depth=settings.CSM_JSON_MAX_DEPTH)
        except InputError as error:
            raise serializers.ValidationError(error.message) from None
        inner = PolicyPayloadSerializer(data=data if isinstance(data, dict) else {})
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be a JSON object")
        inner.is_valid(raise_exception=True)
        return inner.validated_data


class PolicyVersionSerializer(serializers.ModelSerializer):
    policy_yaml = serializers.CharField(source="content", read_only=True,
                                        help_text="kosli's name for the source (getPolicy.go); Rego for a Rego policy")

    class Meta:
        model = PolicyVersion
        fields = ["version", "sha256", "comment", "created_at", "created_by", "content", "document", "policy_yaml"]


class PolicySerializer(serializers.ModelSerializer):
    environments = serializers.SerializerMethodField()
    consuming_envs = serializers.SerializerMethodField()  # kosli's name (getPolicy.go, listPolicies.go)
    flows = serializers.SerializerMethodField()
    content = serializers.SerializerMethodField()
    sha256 = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = ["name", "description", "type", "format", "latest_version", "sha256", "created_at", "updated_at",
                  "environments", "consuming_envs", "flows", "content"]

    def get_environments(self, policy) -> list[str]:
        return sorted(a.environment.name for a in policy.attachments.select_related("environment"))

    def get_consuming_envs(self, policy) -> list[str]:
        return self.get_environments(policy)

    def get_flows(self, policy) -> list[str]:
        return sorted(a.flow.name for a in policy.flow_attachments.select_related("flow"))

    def get_sha256(self, policy) -> str:
        version = policy.versions.filter(version=policy.latest_version).first()
        return version.sha256 if version else ""

    def get_content(self, policy) -> str:
        version = policy.versions.filter(version=policy.latest_version).first()
        return version.content if version else ""


class PolicyDetailSerializer(PolicySerializer):
    versions = PolicyVersionSerializer(many=True, read_only=True)

    class Meta(PolicySerializer.Meta):
        fields = [*PolicySerializer.Meta.fields, "versions"]


class PolicyNamesSerializer(serializers.Serializer):
    policy_names = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1, max_length=100)


class AllowlistEntryInputSerializer(serializers.Serializer):
    """Accepts our names and the kosli ones: ``kosli allow artifact`` sends ``artifact_fingerprint``,
    ``artifact_name`` and ``description`` (its ``AllowlistPayload``); older clients send ``sha256``."""

    fingerprint = serializers.RegexField(FINGERPRINT_RE, required=False, error_messages={
        "invalid": "must be a lowercase 64-hex SHA-256"})
    artifact_fingerprint = serializers.RegexField(FINGERPRINT_RE, required=False, error_messages={
        "invalid": "must be a lowercase 64-hex SHA-256"})
    sha256 = serializers.RegexField(FINGERPRINT_RE, required=False, error_messages={
        "invalid": "must be a lowercase 64-hex SHA-256"})
    artifact_name = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    reason = serializers.CharField(max_length=2000, required=False)
    description = serializers.CharField(max_length=2000, required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, data):
        fingerprint = data.get("fingerprint") or data.get("sha256") or data.get("artifact_fingerprint")
        if not fingerprint:
            raise serializers.ValidationError({"fingerprint": ["This field is required."]})
        reason = (data.get("reason") or data.get("description") or "").strip()
        if not reason:
            raise serializers.ValidationError({"reason": ["This field is required."]})
        return {"fingerprint": fingerprint, "artifact_name": data["artifact_name"], "reason": reason,
                "expires_at": data.get("expires_at")}


class AllowlistEntrySerializer(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment.name")
    active = serializers.SerializerMethodField()

    class Meta:
        model = AllowlistEntry
        fields = ["id", "environment", "fingerprint", "artifact_name", "reason", "expires_at", "active",
                  "created_at", "created_by", "removed_at", "removed_by"]

    def get_active(self, entry) -> bool:
        return entry.is_active()


class SnapshotComplianceSerializer(serializers.ModelSerializer):
    environment = serializers.CharField(source="environment.name")
    compliance_status = serializers.SerializerMethodField()

    class Meta:
        model = SnapshotCompliance
        fields = ["environment", "snapshot_index", "snapshot_at", "compliant", "compliance_status", "changed",
                  "applied_policies", "compliant_count", "non_compliant_count", "unknown_count", "unauthorized_count",
                  "evaluated_at"]

    def get_compliance_status(self, row) -> str:
        return compliance_state(row.compliant)
