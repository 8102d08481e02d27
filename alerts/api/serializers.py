from rest_framework import serializers

from alerts.choices import ActionType, MinSeverity
from alerts.models import Action, Delivery, DeliveryAttempt
from alerts.services import ALERT_TRIGGERS


class ActionInputSerializer(serializers.Serializer):
    """Create / update body: ``{name, environments, triggers, min_severity, type, url | email}``."""

    name = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=ActionType.choices)
    url = serializers.URLField(max_length=2000, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    environments = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list,
                                         max_length=500)
    triggers = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1,
                                     max_length=len(ALERT_TRIGGERS))
    min_severity = serializers.ChoiceField(
        choices=MinSeverity.choices, required=False, allow_blank=True,
        help_text="Vulnerability triggers: name only vulnerabilities at least this severe (unknown always counts); "
                  "empty or absent: every severity")
    enabled = serializers.BooleanField(required=False)


class ActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Action
        fields = ["id", "name", "type", "url", "email", "environments", "triggers", "min_severity", "enabled",
                  "disabled_reason",
                  "disabled_at", "consecutive_failures", "created_at", "updated_at"]


class CreatedActionSerializer(ActionSerializer):
    secret = serializers.CharField(read_only=True, allow_null=True,
                                   help_text="Webhook signing secret (whsec_...): shown only in this answer")

    class Meta(ActionSerializer.Meta):
        fields = [*ActionSerializer.Meta.fields, "secret"]


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "status_code", "succeeded", "latency_ms", "response_snippet", "error"]


class DeliverySerializer(serializers.ModelSerializer):
    attempts = DeliveryAttemptSerializer(many=True, read_only=True)
    action = serializers.IntegerField(source="action_id")

    class Meta:
        model = Delivery
        fields = ["id", "action", "event_id", "event_type", "environment_name", "snapshot_index", "description",
                  "status", "attempt_count", "next_attempt_at", "created_at", "delivered_at", "attempts"]
