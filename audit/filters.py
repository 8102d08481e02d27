"""The audit-event filters shared by the web page and the API: actor, action, target type / id, a
time range (``from`` / ``to``, ISO 8601), ``unusual`` (unusual activity only) and ``seq`` (one event by its
number, the link an unusual-activity alert carries). One FilterSet validates them, so a bad value is reported the
same way in both places (the API names the parameter in a 400, the page shows it next to the field)."""

from django import forms
from django_filters import rest_framework as filters

from audit.choices import ActorType, AuditAction
from audit.models import AuditEvent
from csm.api.filters import FilterSet
from csm.lib.bounded import InputError, to_utc

FILTER_PARAMS = ("actor", "actor_type", "action", "target_type", "target_id", "from", "to", "unusual", "seq")


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


class UTCDateTimeFilter(filters.Filter):
    field_class = UTCDateTimeField


class AuditEventFilterSet(FilterSet):
    actor = filters.CharFilter("actor_label", "icontains", label="Actor", max_length=255,
                               help_text="Part of the actor's email or name")
    actor_type = filters.ChoiceFilter(choices=ActorType.choices, label="Actor type", empty_label="Any actor")
    action = filters.ChoiceFilter(choices=AuditAction.choices, label="Action", empty_label="Any action")
    target_type = filters.CharFilter(label="Target type", max_length=50)
    target_id = filters.CharFilter(label="Target id", max_length=64)
    # "from" is a Python keyword: declared through the class namespace.
    vars()["from"] = UTCDateTimeFilter("created_at", "gte", label="From", help_text="At or after (ISO 8601)")
    to = UTCDateTimeFilter("created_at", "lt", label="To", help_text="Before (ISO 8601)")
    unusual = filters.BooleanFilter(method="filter_unusual", label="Unusual activity only",
                                    widget=forms.CheckboxInput,
                                    help_text="Only security.unusual_activity events (identity.activity)")
    seq = filters.NumberFilter("seq", label="Event #", min_value=1)

    def filter_unusual(self, queryset, name, value):
        return queryset.filter(action=AuditAction.UNUSUAL_ACTIVITY) if value else queryset

    class Meta:
        model = AuditEvent
        fields: list = []
