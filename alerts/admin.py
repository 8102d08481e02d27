"""Staff views of alert actions and deliveries. Changes go through the audited services (API and pages):
editing an action here would bypass the audit trail and the once-only secret."""

from django.contrib import admin

from csm.admin import ReadOnlyAdmin

from .models import Action, AgentSilence, Delivery, DeliveryAttempt


@admin.register(Action)
class ActionAdmin(ReadOnlyAdmin):
    list_display = ["name", "org", "type", "enabled", "consecutive_failures"]
    list_filter = ["org", "type", "enabled"]
    exclude = ["secret_encrypted"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "action", "event_type", "status", "attempt_count", "created_at"]
    list_filter = ["org", "status", "event_type"]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_filter = ["org"]


@admin.register(AgentSilence)
class AgentSilenceAdmin(ReadOnlyAdmin):
    list_filter = ["org"]
