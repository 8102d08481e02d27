from rest_framework import serializers

from tenants.choices import Role
from tenants.models import ApiToken, Invitation, Membership, Org, ServiceAccount
from tenants.services import MAX_ROTATION_GRACE_SECONDS


class OrgSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The caller's role in this org")

    class Meta:
        model = Org
        fields = ["slug", "name", "created_at", "role", "report_body_retention_days", "evidence_file_retention_days"]
        read_only_fields = ["slug", "created_at", "role", "report_body_retention_days",
                            "evidence_file_retention_days"]

    def get_role(self, org) -> str | None:
        roles = self.context.get("roles") or {}
        return roles.get(org.pk)


class OrgUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    report_body_retention_days = serializers.IntegerField(
        required=False, allow_null=True, help_text="Drop stored report bodies after this many days (null: keep)")
    evidence_file_retention_days = serializers.IntegerField(
        required=False, allow_null=True, help_text="Drop stored evidence files after this many days (null: keep)")


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class MemberSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["id", "user", "created_at"]


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, allow_null=True, default=None)
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "invited_by", "created_at", "expires_at", "accepted_at",
                  "revoked_at"]
        read_only_fields = ["id", "status", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at"]


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationCreatedSerializer(InvitationSerializer):
    accept_url = serializers.CharField(read_only=True, help_text="The single-use link (also emailed); shown once")

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "accept_url"]


class ServiceAccountSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = ServiceAccount
        fields = ["id", "name", "description", "role", "active", "created_at", "deactivated_at"]
        read_only_fields = ["id", "active", "created_at", "deactivated_at"]

    def get_active(self, account) -> bool:
        return account.deactivated_at is None


class ServiceAccountCreateSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$", max_length=100,
                                  help_text="Lowercase letters, digits and hyphens")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.SNAPSHOTTER,
                                   help_text="Any role but owner")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ServiceAccountUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False, help_text="Any role but owner")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)


class TokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its secret."""

    status = serializers.CharField(read_only=True)
    kind = serializers.CharField(read_only=True)
    rotated_to = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "kind", "status", "created_at", "expires_at", "revoked_at",
                  "last_used_at", "last_used_ip", "rotated_to", "scope_environments", "scope_flows", "read_only",
                  "allowed_networks"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, default="default")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                           help_text="When the token stops working (default: never)")
    scope_environments = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=100,
        help_text="Environment names the token may touch (default: all). Names need not exist yet.")
    scope_flows = serializers.ListField(
        child=serializers.CharField(max_length=120), required=False, default=list, max_length=100,
        help_text="Flow names the token may touch (default: all)")
    read_only = serializers.BooleanField(required=False, default=False,
                                         help_text="Only GET, HEAD and OPTIONS requests (default: false)")
    allowed_networks = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list, max_length=100,
        help_text="Client networks in CIDR notation the token may be used from (default: any)")


class TokenCreatedSerializer(TokenSerializer):
    """The create / rotate response: the only time the secret is returned."""

    token = serializers.CharField(read_only=True, help_text="The secret; shown only in this response")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenRotateSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(min_value=0, max_value=MAX_ROTATION_GRACE_SECONDS, default=86400,
                                             help_text="How long the old token keeps working")
