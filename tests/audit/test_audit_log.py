"""The audit log API and web page: filters, pagination, permissions."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tenants.choices import Role

pytestmark = pytest.mark.django_db

URL = "/api/v2/orgs/acme/audit-events"


@pytest.fixture
def history(owner_api, org):
    for n in range(3):
        owner_api.patch("/api/v2/orgs/acme", {"name": f"Acme {n}"}, format="json")
    owner_api.post("/api/v2/orgs/acme/service-accounts", {"name": "agent"}, format="json")
    return org


def test_list_newest_first_with_actor_and_target(owner_api, history):
    body = owner_api.get(URL).json()
    first = body["results"][0]
    assert first["action"] == "service_account.created"
    assert first["actor"]["type"] == "user" and first["actor"]["label"] == "owner@example.com"
    assert first["target"]["type"] == "serviceaccount" and first["target"]["label"] == "acme/agent"
    seqs = [e["seq"] for e in body["results"]]
    assert seqs == sorted(seqs, reverse=True) and body["count"] == len(seqs)


def test_filters(owner_api, history):
    assert owner_api.get(URL, {"action": "org.updated"}).json()["count"] == 3
    assert owner_api.get(URL, {"actor": "OWNER@"}).json()["count"] >= 5
    assert owner_api.get(URL, {"actor": "nobody"}).json()["count"] == 0
    assert owner_api.get(URL, {"target_type": "serviceaccount"}).json()["count"] == 1
    event = owner_api.get(URL, {"target_type": "serviceaccount"}).json()["results"][0]
    assert owner_api.get(URL, {"target_id": event["target"]["id"], "target_type": "serviceaccount"}).json()[
        "count"] == 1
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert owner_api.get(URL, {"from": future}).json()["count"] == 0
    assert owner_api.get(URL, {"to": future}).json()["count"] == owner_api.get(URL).json()["count"]
    assert owner_api.get(f"{URL}/{event['id']}").json()["action"] == "service_account.created"


def test_bad_filter_is_a_400_naming_the_field(owner_api, history):
    response = owner_api.get(URL, {"from": "yesterday-ish"})
    assert response.status_code == 400 and "from" in response.json()["error"]["fields"]
    response = owner_api.get(URL, {"action": "made.up"})
    assert response.status_code == 400 and "action" in response.json()["error"]["fields"]


def test_pagination(owner_api, history):
    body = owner_api.get(URL, {"per_page": 2}).json()
    assert len(body["results"]) == 2 and body["next"] and body["count"] > 2
    page2 = owner_api.get(URL, {"per_page": 2, "page": 2}).json()
    assert page2["results"][0]["seq"] == body["results"][1]["seq"] - 1


@pytest.mark.parametrize("role,status", [(Role.ADMIN, 200), (Role.MEMBER, 403), (Role.READER, 403),
                                         (Role.SNAPSHOTTER, 403)])
def test_only_admins_and_owners_read_it(api, org, member_of, role, status):
    assert api(user=member_of(org, role)).get(URL).status_code == status


def test_web_page_filters_and_paginates(client, owner, history):
    client.force_login(owner)
    page = client.get(reverse("audit-log", args=["acme"]), {"action": "org.updated"}).content.decode()
    assert page.count("<code>org.updated</code>") == 3 and "service_account.created</code>" not in page
    page = client.get(reverse("audit-log", args=["acme"]), {"from": "nonsense"}).content.decode()
    assert "Enter a valid date/time" in page


def test_web_page_is_forbidden_for_members(client, org, member_of):
    client.force_login(member_of(org, Role.MEMBER))
    assert client.get(reverse("audit-log", args=["acme"])).status_code == 403
