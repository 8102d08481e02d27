"""FilterSets of the snapshot API's lists: environments (``archived``) and an environment's events (``from`` /
``to``, ``snapshot_from`` / ``snapshot_to``, ``kind``, ``fingerprint``). Paging and ordering stay in the
views, which answer kosli's shape (a plain JSON array, totals in headers). ``EventPageFilterSet``: the
environment page's event filter (web)."""

from django.db.models import Q
from django_filters import rest_framework as filters

from csm.api.filters import BoundedDateTimeFilter, BoundedIntegerFilter, FilterSet
from csm.lib.fingerprints import is_fingerprint_prefix
from snapshots.choices import EventKind
from snapshots.models import Environment, SnapshotEvent

TRUE = ("1", "true", "yes")


class EnvironmentFilterSet(FilterSet):
    """Archived environments are left out unless ``archived`` is 1 / true / yes (any case); any other value
    leaves them out too, as it always did (never a 400)."""

    archived = filters.Filter(method="keep_all")  # a plain field: the value is read as sent, never refused

    class Meta:
        model = Environment
        fields: list = []

    def keep_all(self, queryset, name, value):
        return queryset  # the decision is in filter_queryset, which also runs when the parameter is absent

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if (self.form.cleaned_data.get("archived") or "").lower() not in TRUE:
            queryset = queryset.filter(archived=False)
        return queryset


class EventFilterSet(FilterSet):
    vars()["from"] = BoundedDateTimeFilter("created_at", "gte")
    to = BoundedDateTimeFilter("created_at", "lte")
    snapshot_from = BoundedIntegerFilter("snapshot_index", "gte", minimum=0)
    snapshot_to = BoundedIntegerFilter("snapshot_index", "lte", minimum=0)
    kind = filters.ChoiceFilter(choices=EventKind.choices, error_messages={
        "invalid_choice": f"kind must be one of {', '.join(EventKind.values)}."})
    fingerprint = filters.CharFilter(strip=False)  # matched exactly as sent

    class Meta:
        model = SnapshotEvent
        fields: list = []


class EventPageFilterSet(FilterSet):
    """The environment page's events: ``kind``, ``artifact`` (a name, case-insensitive substring, or a
    fingerprint prefix of at least 5 hex characters), ``from`` / ``to`` (ISO 8601 times, UTC when no
    offset is given; an HTML date-time input's value qualifies). Bounded like the API's filters."""

    kind = filters.ChoiceFilter(choices=EventKind.choices, empty_label="any change", error_messages={
        "invalid_choice": f"kind must be one of {', '.join(EventKind.values)}."})
    artifact = filters.CharFilter(method="match_artifact", max_length=200)
    vars()["from"] = BoundedDateTimeFilter("created_at", "gte")
    to = BoundedDateTimeFilter("created_at", "lte")

    class Meta:
        model = SnapshotEvent
        fields: list = []

    def match_artifact(self, queryset, name, value):
        text = value.strip()
        if not text:
            return queryset
        by_name = Q(name__icontains=text)
        if is_fingerprint_prefix(text.lower()):
            return queryset.filter(by_name | Q(fingerprint__startswith=text.lower()))
        return queryset.filter(by_name)
