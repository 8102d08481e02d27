"""The shared base of the apps' FilterSets (``<app>/filters.py``): filters whose values go through
csm.lib.bounded, and one way an invalid FilterSet becomes the API's 400.

- ``BoundedDateTimeFilter`` / ``BoundedIntegerFilter``: the value is parsed by ``parse_datetime`` /
  ``parse_int``, so a query parameter is refused with the same words wherever it appears (ASCII digits,
  inside a bigint, within years 1-9999 once in UTC) and never reaches the database as an overflow.
- ``FilterSet``: django-filter's, whose ``qs_or_400()`` answers an invalid input with
  ``{"error": {"code": "invalid", "message", "fields": {parameter: [problem]}}}``.
- ``FilterBackend``: DjangoFilterBackend for generic views, raising that same error (django-filter's own
  raises a bare ValidationError, whose message would read differently from the APIViews' answers).

A parameter that is a Python keyword (``from``) is declared with ``vars()["from"] = ...`` in the class body.
"""

from django import forms
from django.db.models import Q
from django_filters import rest_framework as filters

from csm.api.errors import invalid
from csm.lib.bounded import INT64_MAX, InputError, parse_datetime, parse_int


class _BoundedField(forms.Field):
    """A form field whose parsing is one csm.lib.bounded function; ``param`` (the query parameter's name,
    set by FilterSet.get_form_class) is the name the error message starts with."""

    param = "value"

    def parse(self, text: str):
        raise NotImplementedError

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return self.parse(str(value))
        except InputError as error:
            raise forms.ValidationError(error.message, code=error.code) from None


class BoundedDateTimeField(_BoundedField):
    def parse(self, text):
        return parse_datetime(text, self.param)


class BoundedIntegerField(_BoundedField):
    def __init__(self, *, minimum: int | None = None, maximum: int = INT64_MAX, **kwargs):
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum

    def parse(self, text):
        return parse_int(text, self.param, minimum=self.minimum, maximum=self.maximum)


class BoundedDateTimeFilter(filters.Filter):
    field_class = BoundedDateTimeField


class BoundedIntegerFilter(filters.Filter):
    field_class = BoundedIntegerField


def filterset_error(filterset):
    """The API's 400 for an invalid FilterSet: every parameter at fault in ``fields``; the message is the
    first problem when it already names its parameter (the bounded parsers' words), else
    "Invalid filter: <parameter>: <problem>"."""
    fields = {name: [str(problem) for problem in problems] for name, problems in filterset.errors.items()}
    name, problems = next(iter(fields.items()))
    message = problems[0] if problems[0].startswith(f"{name} ") else f"Invalid filter: {name}: {problems[0]}"
    return invalid(message, fields)


class FilterSet(filters.FilterSet):
    def get_form_class(self):
        form = super().get_form_class()
        for name, field in form.base_fields.items():
            if isinstance(field, _BoundedField):
                field.param = name
        return form

    def qs_or_400(self):
        """The filtered queryset, or the API's 400 (raised) naming each invalid parameter."""
        if not self.is_valid():
            raise filterset_error(self)
        return self.qs


class FilterBackend(filters.DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise filterset_error(filterset)
        return filterset.qs


MAX_TAG_FILTERS = 20  # repeated tag values in one list request


def filter_by_tags(queryset, values, limit: int = MAX_TAG_FILTERS):
    """kosli's repeatable ``--tag`` filter (``list environments``, ``list repos``, ``list controls``):
    ``key`` (the tag is set) or ``key:value``; an object carrying any of them matches. At most ``limit``
    values of at most 400 characters, else a 400 naming ``tag``."""
    tags = [value for value in values if value]
    if len(tags) > limit or any(len(tag) > 400 for tag in tags):
        raise InputError(f"at most {limit} tag values of at most 400 characters", "tag")
    if not tags:
        return queryset
    wanted = Q()
    for tag in tags:
        key, colon, value = tag.partition(":")
        if not key:
            raise InputError(f"tag {tag[:60]!r} must be 'key' or 'key:value'", "tag")
        wanted |= Q(tags__contains={key: value}) if colon else Q(tags__has_key=key)
    return queryset.filter(wanted)
