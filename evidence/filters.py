"""FilterSets of the evidence vault's lists (flows, a flow's trails and artifacts, a trail's attestations).
They take kosli's ``limit`` (default 100, clamped to 1..500; ASCII digits through csm.lib.bounded, so a
Unicode digit or a sign is a 400 naming ``limit``); the list keeps the model's order (flows by name, the
others newest first)."""

import django_filters

from csm.api.filters import BoundedIntegerFilter, FilterSet
from evidence.models import Artifact, Attestation, Flow, Trail

TRUE = ("1", "true", "yes")
DEFAULT_LIMIT = 100
MAX_LIST = 500


class LimitFilterSet(FilterSet):
    limit = BoundedIntegerFilter(method="keep_all")

    def keep_all(self, queryset, name, value):
        return queryset  # the slice is taken last, in filter_queryset, after every other filter

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        limit = self.form.cleaned_data.get("limit")
        return queryset[: DEFAULT_LIMIT if limit is None else max(1, min(limit, MAX_LIST))]


class FlowFilterSet(LimitFilterSet):
    """``kosli list flows --name X`` sends ``search_by_name=X`` (flows whose name contains X) and, with
    ``--ignore-case``, ``case_sensitive=false``. Archived flows (kosli ``archive flow``) are left out unless
    ``archived`` is 1 / true / yes, as archived environments are (snapshots.filters.EnvironmentFilterSet)."""

    search_by_name = django_filters.CharFilter(method="by_name", max_length=100)
    case_sensitive = django_filters.ChoiceFilter(method="keep_all", choices=[("true", "true"), ("false", "false")])

    def by_name(self, queryset, name, value):
        if self.form.cleaned_data.get("case_sensitive") == "false":
            return queryset.filter(name__icontains=value)
        return queryset.filter(name__contains=value)

    archived = django_filters.Filter(method="keep_all")

    class Meta:
        model = Flow
        fields: list = []

    def filter_queryset(self, queryset):
        if (self.form.cleaned_data.get("archived") or "").lower() not in TRUE:
            queryset = queryset.filter(archived=False)
        return super().filter_queryset(queryset)


class TrailFilterSet(LimitFilterSet):
    class Meta:
        model = Trail
        fields: list = []


class ArtifactFilterSet(LimitFilterSet):
    class Meta:
        model = Artifact
        fields: list = []


class AttestationFilterSet(LimitFilterSet):
    class Meta:
        model = Attestation
        fields: list = []
