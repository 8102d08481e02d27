"""Microsoft Entra ID's published SCIM requests (tests/identity/fixtures/scim/entra/, from the Entra tutorial
"Develop and plan provisioning for a SCIM endpoint" and its "Known issues" page), replayed in order: a user
that is not an email address, PATCH with ``Replace``/``Add``/``Remove`` and string booleans, group members
added and removed both ways Entra sends, disable, enable and delete."""

import pytest

from audit.models import AuditEvent
from identity.models import GroupRoleMapping, ScimUser
from tenants.choices import Role
from tenants.models import Membership
from tests.identity.scim_support import ScimClient, fixtures, replay, scim_token

pytestmark = pytest.mark.django_db

USER_IDS = ("5d48a0a8e9f04aa38008", "6764549bef60420686bc", "5171a35d82074e068ce2", "f648f8d5ea4e4cd38e9c",
            "7f4bc1a3-285e-48ae-8202-5accb43efb0e")
GROUP_IDS = ("40734ae655284ad3abcc", "a99962b9f99d4c4fac67", "fa2ce26709934589afc5", "cdb1ce18f65944079d37")
EMAIL = "test_user_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"


def test_entra_provisioning_lifecycle(org):
    GroupRoleMapping.objects.create(org=org, group="displayName", role=Role.ADMIN)
    entra = ScimClient(scim_token(org, "Entra ID"))
    requests = fixtures("entra")
    ids = {}

    # "Test Connection" and the lookup before creating: an empty ListResponse, not a 404.
    answer = replay(entra, requests["01_find_user"], ids)
    assert answer.status_code == 200 and answer.json()["totalResults"] == 0, answer.content

    # userName is not an email: the work email finds or creates the person.
    answer = replay(entra, requests["02_create_user"], ids)
    assert answer.status_code == 201, answer.content
    user_id = answer.json()["id"]
    ids.update(dict.fromkeys(USER_IDS, user_id))
    membership = Membership.objects.get(org=org, user__email=EMAIL)
    assert (membership.role, membership.source) == (Role.MEMBER, "scim")
    assert answer.json()["emails"][0]["value"] == "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"

    assert replay(entra, requests["03_get_user"], ids).json()["userName"] == \
        "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    found = replay(entra, requests["04_get_user_by_query"], ids).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == user_id

    answer = replay(entra, requests["05_update_multi_valued"], ids)
    assert answer.status_code == 200
    assert answer.json()["name"]["familyName"] == "updatedFamilyName"
    assert answer.json()["emails"] == [{"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}]
    # Entra matches users by the work email too, in exactly this filter form.
    by_email = entra.get('/Users?filter=emails[type eq "work"].value eq "UPDATEDEMAIL@microsoft.com"'
                         .replace(" ", "%20").replace('"', "%22"))
    assert [r["id"] for r in by_email.json()["Resources"]] == [user_id]

    answer = replay(entra, requests["06_update_single_valued"], ids)
    assert answer.json()["userName"] == "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    answer = replay(entra, requests["07_replace_multiple"], ids)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["displayName"], body["name"]["givenName"], body["name"]["familyName"]) == ("Bjfe", "Kkom", "Unua")
    assert body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] == {"employeeNumber": "Aklq"}
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" in body["schemas"]
    # csm never rewrites the person's own account from SCIM: they may belong to other orgs.
    membership.user.refresh_from_db()
    assert membership.user.email == EMAIL

    answer = replay(entra, requests["08_create_group"], ids)
    assert answer.status_code == 201 and answer.json()["members"] == []
    ids.update(dict.fromkeys(GROUP_IDS, answer.json()["id"]))
    answer = replay(entra, requests["09_get_group"], ids)
    assert answer.json()["displayName"] == "displayName" and "members" not in answer.json()
    answer = replay(entra, requests["10_get_group_by_display_name"], ids).json()
    assert answer["totalResults"] == 1 and "members" not in answer["Resources"][0]

    def role():
        membership.refresh_from_db()
        return membership.role

    assert replay(entra, requests["11_add_members"], ids).status_code == 204
    assert role() == Role.ADMIN
    assert replay(entra, requests["12_remove_members"], ids).status_code == 204  # Entra's value-list form
    assert role() == Role.MEMBER
    replay(entra, requests["11_add_members"], ids)
    assert replay(entra, requests["13_remove_member_compliant"], ids).status_code == 204  # members[value eq]
    assert role() == Role.MEMBER
    replay(entra, requests["11_add_members"], ids)
    assert role() == Role.ADMIN
    # Renamed to a name no mapping knows: the role falls back to the default.
    assert replay(entra, requests["14_rename_group"], ids).status_code == 204
    assert role() == Role.MEMBER

    # "False" as a string, as Entra sends it without the compliance flag.
    answer = replay(entra, requests["15_disable_user_string"], ids)
    assert answer.status_code == 200 and answer.json()["active"] is False
    membership.refresh_from_db()
    assert membership.suspended_at is not None
    # A disabled user is still returned, with active false (Entra requires it).
    listed = entra.get("/Users?filter=userName%20eq%20%225b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com%22")
    assert listed.json()["Resources"][0]["active"] is False
    assert replay(entra, requests["16_enable_user_string"], ids).json()["active"] is True
    membership.refresh_from_db()
    assert membership.suspended_at is None
    assert replay(entra, requests["17_disable_user"], ids).json()["active"] is False
    membership.refresh_from_db()
    assert membership.suspended_at is not None

    # DELETE: the resource goes, the membership stays suspended (the person's history stays theirs).
    assert replay(entra, requests["18_delete_user"], ids).status_code == 204
    assert replay(entra, requests["03_get_user"], ids).status_code == 404
    assert Membership.objects.filter(pk=membership.pk, suspended_at__isnull=False).exists()
    assert not ScimUser.objects.filter(org=org).exists()
    assert AuditEvent.objects.filter(org=org, action="scim.user_deleted").exists()

    assert replay(entra, requests["19_delete_group"], ids).status_code == 204
    schemas = replay(entra, requests["20_schemas"], ids).json()
    assert {s["id"] for s in schemas["Resources"]} == {
        "urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}

    # Provisioned again after the DELETE: a new resource, the same person, reactivated.
    again = replay(entra, requests["02_create_user"], {})
    assert again.status_code == 201 and again.json()["id"] != user_id
    membership.refresh_from_db()
    assert membership.suspended_at is None
