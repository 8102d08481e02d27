from rest_framework import serializers

from audit.models import AuditEvent


class ActorSerializer(serializers.Serializer):
    type = serializers.CharField(source="actor_type")
    label = serializers.CharField(source="actor_label")
    user_id = serializers.IntegerField(source="actor_user_id", allow_null=True)
    service_account_id = serializers.IntegerField(source="actor_service_account_id", allow_null=True)
    token_id = serializers.IntegerField(source="actor_token_id", allow_null=True)


class TargetSerializer(serializers.Serializer):
    type = serializers.CharField(source="target_type")
    id = serializers.CharField(source="target_id")
    label = serializers.CharField(source="target_label")


class AuditEventSerializer(serializers.ModelSerializer):
    actor = ActorSerializer(source="*")
    target = TargetSerializer(source="*")
    journal_index = serializers.IntegerField(source="leaf.index")

    class Meta:
        model = AuditEvent
        fields = ["id", "seq", "action", "actor", "target", "before", "after", "request_id", "ip", "user_agent",
                  "created_at", "journal_index"]
        read_only_fields = fields
