"""audit/filters.py: ONE FilterSet behind the audit-events API and the audit log page, on real PostgreSQL
rows; a bad value is a 400 naming the parameter on the API and an error next to the field on the page."""

import pytest
from django.urls import reverse

from audit.filters import AuditEventFilterSet
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = "/api/v2/orgs/acme/audit-events"


@pytest.fixture
def history(owner_api, org):
    for n in range(2):
        owner_api.patch("/api/v2/orgs/acme", {"name": f"Acme {n}"}, format="json")
    owner_api.post("/api/v2/orgs/acme/service-accounts", {"name": "agent"}, format="json")
    return org


def test_filterset_filters_by_action_actor_target_and_time(history):
    queryset = AuditEvent.objects.for_org(history).order_by("-seq")

    def actions(**params):
        return [e.action for e in AuditEventFilterSet(params, queryset=queryset).qs_or_400()]

    assert actions(action="org.updated") == ["org.updated", "org.updated"]
    assert actions(target_type="serviceaccount", actor="OWNER@") == ["service_account.created"]
    assert actions(actor="nobody") == []
    newest = queryset.first()
    assert actions(**{"from": newest.created_at.isoformat()})[0] == newest.action
    assert newest.action not in actions(to=newest.created_at.isoformat())  # "to" is exclusive


def test_api_400_names_every_bad_parameter_with_the_first_in_the_message(owner_api, history):
    response = owner_api.get(URL, {"action": "made.up", "from": "0001-01-01T00:00:00+14:00"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error["fields"]) == {"action", "from"}
    assert error["message"].startswith("Invalid filter: action: Select a valid choice.")
    assert error["fields"]["from"] == ["Out of range once converted to UTC (years 1 to 9999)."]


def test_reading_one_event_ignores_the_list_filters(owner_api, history):
    event = owner_api.get(URL).json()["results"][0]
    assert owner_api.get(f"{URL}/{event['id']}", {"action": "made.up"}).status_code == 200


def test_web_page_uses_the_same_filterset_and_shows_its_errors(client, owner, history):
    client.force_login(owner)
    page = client.get(reverse("audit-log", args=["acme"]), {"actor_type": "robot"}).content.decode()
    assert "Select a valid choice. robot is not one of the available choices." in page
    page = client.get(reverse("audit-log", args=["acme"]), {"target_type": "serviceaccount"}).content.decode()
    assert page.count("<code>service_account.created</code>") == 1 and "<code>org.updated</code>" not in page
    assert 'value="serviceaccount"' in page and "Any actor" in page
