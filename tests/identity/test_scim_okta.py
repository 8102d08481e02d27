"""Okta's published SCIM 2.0 requests (tests/identity/fixtures/scim/okta/, from Okta's "SCIM 2.0 Protocol
Reference"), replayed in order against csm: look the user up, create them, read, replace, group them, and
deactivate and reactivate them — with what a member of the org depends on checked at each step."""

import pytest
from rest_framework.test import APIClient

from audit.context import AuditContext
from audit.models import AuditEvent
from identity.models import GroupRoleMapping, ScimSettings
from tenants.choices import Role
from tenants.models import Membership
from tenants.services import create_api_token
from tests.identity.scim_support import ScimClient, fixtures, replay, scim_token

pytestmark = pytest.mark.django_db

OKTA_USER = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
OKTA_OTHER_USER = "89bb1940-b905-4575-9e7f-6f887cfb368e"
OKTA_GROUP = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"


def _org_page(client, org):
    return client.get(f"/o/{org.slug}/")


def test_okta_provisioning_lifecycle(org):
    ScimSettings.objects.create(org=org, default_role=Role.READER)
    GroupRoleMapping.objects.create(org=org, group="Test SCIMv2", role=Role.ADMIN)
    okta = ScimClient(scim_token(org, "Okta"))
    requests = fixtures("okta")
    ids = {}

    # The lookup before creating: nobody yet, an empty ListResponse.
    answer = replay(okta, requests["01_find_user"], ids)
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/scim+json")
    assert answer.json()["totalResults"] == 0 and answer.json()["Resources"] == []

    answer = replay(okta, requests["02_create_user"], ids)
    assert answer.status_code == 201, answer.content
    created = answer.json()
    ids[OKTA_USER] = created["id"]
    assert answer["Location"].endswith(f"/scim/v2/Users/{created['id']}")
    assert created["userName"] == "test.user@okta.local" and created["active"] is True
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert "password" not in created
    membership = Membership.objects.get(org=org, user__email="test.user@okta.local")
    assert (membership.role, membership.source, membership.suspended_at) == (Role.READER, "scim", None)
    person = membership.user
    assert not person.has_usable_password()  # Okta's password sync is not a csm password

    # The same lookup finds them now, and the full list pages them.
    answer = replay(okta, requests["01_find_user"], ids)
    assert [r["id"] for r in answer.json()["Resources"]] == [created["id"]]
    answer = replay(okta, requests["03_list_users"], ids)
    assert answer.json()["totalResults"] == 1 and answer.json()["startIndex"] == 1
    assert replay(okta, requests["04_get_user"], ids).json()["name"]["givenName"] == "Test"

    answer = replay(okta, requests["05_put_user"], ids)
    assert answer.status_code == 200
    assert answer.json()["name"] == {"givenName": "Another", "middleName": "Excited", "familyName": "User"}

    # A second provisioned person, for the membership requests that name one.
    second = dict(requests["02_create_user"]["body"], userName="second.user@okta.local", externalId="00u2",
                  emails=[{"primary": True, "value": "second.user@okta.local", "type": "work"}])
    ids[OKTA_OTHER_USER] = okta.post("/Users", second).json()["id"]

    answer = replay(okta, requests["06_create_group"], ids)
    assert answer.status_code == 201
    ids[OKTA_GROUP] = answer.json()["id"]
    assert answer.json()["displayName"] == "Test SCIMv2" and answer.json()["members"] == []
    assert [g["id"] for g in replay(okta, requests["07_list_groups"], ids).json()["Resources"]] == [ids[OKTA_GROUP]]
    assert replay(okta, requests["08_get_group"], ids).json()["displayName"] == "Test SCIMv2"
    assert replay(okta, requests["09_rename_group"], ids).status_code == 204  # the id in its value is ignored

    # Joining the group mapped to admin makes the member an admin, audited as a role change by SCIM.
    assert replay(okta, requests["10_group_membership"], ids).status_code == 204
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    change = AuditEvent.objects.filter(org=org, action="member.role_changed").latest("seq")
    assert change.after["reason"] == "scim" and change.actor_label.startswith("SCIM (csmscim_")
    group = okta.get(f"/Groups/{ids[OKTA_GROUP]}").json()
    assert [m["value"] for m in group["members"]] == [created["id"]]
    assert okta.get(f"/Users/{created['id']}").json()["groups"][0]["display"] == "Test SCIMv2"

    assert replay(okta, requests["11_replace_members"], ids).status_code == 204
    group = okta.get(f"/Groups/{ids[OKTA_GROUP]}").json()
    assert sorted(m["value"] for m in group["members"]) == sorted([created["id"], ids[OKTA_OTHER_USER]])

    # The person signs in and holds a personal token; both reach the org.
    browser = ScimClient(None).client
    browser.force_login(person)
    token = create_api_token(AuditContext.system("test"), org, "laptop", user=person)[1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert _org_page(browser, org).status_code == 200
    assert api.get(f"/api/v2/environments/{org.slug}").status_code == 200

    # Okta deactivates: the session ends, signing in again and the personal token get 404 in this org.
    answer = replay(okta, requests["12_deactivate_user"], ids)
    assert answer.status_code == 200 and answer.json()["active"] is False
    membership.refresh_from_db()
    assert membership.suspended_at is not None and membership.suspended_reason == "scim"
    assert _org_page(browser, org).status_code == 302  # the session was ended: back to sign-in
    browser.force_login(person)
    assert _org_page(browser, org).status_code == 404
    assert api.get(f"/api/v2/environments/{org.slug}").status_code == 404
    assert okta.get("/Users?filter=active%20eq%20false").json()["totalResults"] == 1
    actions = set(AuditEvent.objects.filter(org=org).values_list("action", flat=True))
    assert {"scim.user_created", "scim.user_updated", "scim.group_created", "scim.group_updated",
            "scim.user_suspended", "member.suspended"} <= actions

    # Reactivated: the same person and token work again, with the role they had.
    answer = replay(okta, requests["13_activate_user"], ids)
    assert answer.status_code == 200 and answer.json()["active"] is True
    assert _org_page(browser, org).status_code == 200
    assert api.get(f"/api/v2/environments/{org.slug}").status_code == 200
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN

    # The group goes: its members fall back to the default role.
    assert replay(okta, requests["14_delete_group"], ids).status_code == 204
    membership.refresh_from_db()
    assert membership.role == Role.READER
    assert okta.get(f"/Groups/{ids[OKTA_GROUP]}").status_code == 404
