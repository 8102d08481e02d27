"""FilterSets of the snapshot API's lists: environments (``archived``) and an environment's events (``from`` /
``to``, ``snapshot_from`` / ``snapshot_to``, ``kind``, ``fingerprint``). Paging and ordering stay in the
views, which answer kosli's shape (a plain JSON array, totals in headers). ``EventPageFilterSet``: the
environment page's event filter (web)."""

from django.db.models import F, Q
from django_filters import rest_framework as filters

from csm.api.filters import BoundedDateTimeFilter, BoundedIntegerFilter, FilterSet, filter_by_tags
from csm.lib.bounded import InputError
from csm.lib.fingerprints import is_fingerprint_prefix
from snapshots.choices import EnvironmentType, EventKind
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


MAX_LIST_VALUES = 20  # repeated type / tag values in one list request
# kosli's sort keys. A csm snapshot is recorded only on a change, so its time is both when the environment
# was last modified (the answer's ``last_modified_at``) and last changed.
ENVIRONMENT_SORTS = {"name": "name", "last_modified_at": "last_snapshot_at", "last_changed_at": "last_snapshot_at"}


def kosli_environment_filter(queryset, params):
    """What ``kosli list environments`` sends (cmd/kosli/listEnvironments.go): ``name`` (case-insensitive
    substring), ``type`` and ``tag`` (repeatable; an environment matching any of them; a tag is ``key`` or
    ``key:value``), ``sort`` (name, last_modified_at, last_changed_at) and ``sort_direction`` (asc, desc).
    ``space_id`` is refused: csm has no spaces, and ignoring the filter would list what was not asked for.
    ``InputError`` names the parameter at fault."""
    if params.getlist("space_id"):
        raise InputError("csm has no spaces: list environments without space_id (filter by tag instead)",
                         "space_id")
    name = params.get("name") or ""
    if len(name) > 200:
        raise InputError("name is longer than 200 characters", "name")
    if name:
        queryset = queryset.filter(name__icontains=name)
    types = [value for value in params.getlist("type") if value]
    if len(types) > MAX_LIST_VALUES:
        raise InputError(f"at most {MAX_LIST_VALUES} type values", "type")
    unknown = sorted(set(types) - set(EnvironmentType.values))
    if unknown:
        raise InputError(f"unknown type {unknown[0][:40]!r}; use one of {', '.join(EnvironmentType.values)}", "type")
    if types:
        queryset = queryset.filter(type__in=types)
    queryset = filter_by_tags(queryset, params.getlist("tag"), MAX_LIST_VALUES)
    sort = params.get("sort") or "name"
    if sort not in ENVIRONMENT_SORTS:
        raise InputError(f"sort must be one of {', '.join(ENVIRONMENT_SORTS)}", "sort")
    direction = (params.get("sort_direction") or "asc").lower()
    if direction not in ("asc", "desc"):
        raise InputError("sort_direction must be asc or desc", "sort_direction")
    column = F(ENVIRONMENT_SORTS[sort])
    first = column.desc(nulls_last=True) if direction == "desc" else column.asc(nulls_last=True)
    return queryset.order_by(first, "name")


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
