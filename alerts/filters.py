"""FilterSet of an action's delivery log: ``status`` (pending, retrying, delivered, failed…), ``event_type``
(the trigger, kosli's names) and ``environment`` (its name). The log stays newest first and paginated."""

from django_filters import rest_framework as filters

from alerts.choices import DeliveryStatus, Trigger
from alerts.models import Delivery
from csm.api.filters import FilterSet


class DeliveryFilterSet(FilterSet):
    status = filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = filters.ChoiceFilter(choices=Trigger.choices)
    environment = filters.CharFilter("environment_name", max_length=100)

    class Meta:
        model = Delivery
        fields: list = []
