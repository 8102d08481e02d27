"""The audit-event filters shared by the web page and the API: actor, action, target type / id and a
time range (``from`` / ``to``, ISO 8601). One form validates them, so a bad value is reported the
same way in both places (the API names the field in a 400)."""

from django import forms

from audit.choices import ActorType, AuditAction
from csm.lib.bounded import InputError, to_utc

FILTER_PARAMS = ("actor", "actor_type", "action", "target_type", "target_id", "from", "to")


class UTCDateTimeField(forms.DateTimeField):
    """An ISO 8601 time that must exist in UTC: ``0001-01-01T00:00:00+14:00`` parses, but converting it
    for the query overflowed (a 500); it is a form error naming the field instead."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return to_utc(moment, "time")
        except InputError:
            raise forms.ValidationError("Out of range once converted to UTC (years 1 to 9999).",
                                        code="out_of_range") from None


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=255, help_text="Part of the actor's email or name")
    actor_type = forms.ChoiceField(required=False, choices=[("", "Any actor")] + list(ActorType.choices))
    action = forms.ChoiceField(required=False, choices=[("", "Any action")] + list(AuditAction.choices))
    target_type = forms.CharField(required=False, max_length=50)
    target_id = forms.CharField(required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so the two time fields are added here rather than as attributes.
        self.fields["from"] = UTCDateTimeField(required=False, help_text="At or after (ISO 8601)")
        self.fields["to"] = UTCDateTimeField(required=False, help_text="Before (ISO 8601)")
        self.order_fields(FILTER_PARAMS)

    def filter(self, queryset):
        """Apply the valid filters to ``queryset`` (call after ``is_valid()``)."""
        data = self.cleaned_data
        if data.get("actor"):
            queryset = queryset.filter(actor_label__icontains=data["actor"])
        if data.get("actor_type"):
            queryset = queryset.filter(actor_type=data["actor_type"])
        if data.get("action"):
            queryset = queryset.filter(action=data["action"])
        if data.get("target_type"):
            queryset = queryset.filter(target_type=data["target_type"])
        if data.get("target_id"):
            queryset = queryset.filter(target_id=data["target_id"])
        if data.get("from"):
            queryset = queryset.filter(created_at__gte=data["from"])
        if data.get("to"):
            queryset = queryset.filter(created_at__lt=data["to"])
        return queryset
