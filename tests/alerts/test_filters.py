"""alerts/filters.py: an action's delivery log filtered by ``status``, ``event_type`` and ``environment``
(a FilterSet), on real PostgreSQL rows and a real local receiver; still newest first and paginated; a bad
value is the API's 400 naming the parameter."""

import pytest

from alerts import services
from alerts.choices import DeliveryStatus
from alerts.filters import DeliveryFilterSet
from alerts.models import Delivery
from tests.alerts.test_delivery import CTX, webhook
from tests.policies.helpers import fp, ingest, make_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(org, receiver, django_capture_on_commit_callbacks):
    """One delivered snapshot alert for prod, then two pending test sends (never sent: on_commit not run)."""
    env = make_env(org)
    action, _ = webhook(org, receiver)
    ingest(env, {"web:1": fp(1)}, capture=django_capture_on_commit_callbacks)
    services.attempt_delivery(Delivery.objects.get(action=action).pk)
    with django_capture_on_commit_callbacks(execute=False):
        services.test_action(CTX, org, action)
        services.test_action(CTX, org, action)
    return action


def url(action):
    return f"/api/v2/orgs/acme/actions/{action.pk}/deliveries"


def test_filterset_filters_by_status_event_type_and_environment(org, log):
    queryset = Delivery.objects.for_org(org).filter(action=log).order_by("-created_at", "-id")

    def types(**params):
        return [d.event_type for d in DeliveryFilterSet(params, queryset=queryset).qs_or_400()]

    assert types(status="delivered") == ["ON_STARTED_ARTIFACT"]
    assert types(status="pending") == ["ON_TEST", "ON_TEST"]
    assert types(event_type="ON_TEST", status="delivered") == []
    assert types(environment="prod") == ["ON_STARTED_ARTIFACT"]
    assert len(types()) == 3


def test_delivery_log_filters_over_the_api_keep_the_paginated_shape(owner_api, log):
    body = owner_api.get(url(log), {"status": DeliveryStatus.PENDING, "per_page": "1"}).json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
    assert body["results"][0]["event_type"] == "ON_TEST"
    delivered = owner_api.get(url(log), {"event_type": "ON_STARTED_ARTIFACT"}).json()
    assert delivered["count"] == 1 and delivered["results"][0]["status"] == "delivered"
    assert [a["number"] for a in delivered["results"][0]["attempts"]] == [1]


@pytest.mark.parametrize("name,value", [("status", "lost"), ("event_type", "ON_SOMETHING"), ("environment", "x" * 101)])
def test_bad_delivery_filter_is_a_400_naming_the_parameter(owner_api, log, name, value):
    response = owner_api.get(url(log), {name: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == [name] and error["message"].startswith(f"Invalid filter: {name}: ")
