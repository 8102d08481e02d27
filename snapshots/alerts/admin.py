from django.contrib import admin

from .models import Action, AgentSilence, Delivery, DeliveryAttempt


@admin.register(Action)
class ActionAdmin(admin.ModelAdmin):
    list_display = ["name", "org", "type", "enabled", "consecutive_failures"]
    exclude = ["secret_encrypted"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_id", "action", "event_type", "status", "attempt_count", "created_at"]
    list_filter = ["status", "event_type"]


admin.site.register(DeliveryAttempt)
admin.site.register(AgentSilence)
