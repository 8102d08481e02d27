"""The SCIM API's contract beyond the vendors' examples: authentication by the org's SCIM token only, tenant
isolation, paging, the filter language and its errors, uniqueness, PATCH errors, the last owner, content
types and the discovery documents."""

import pytest
from django.conf import settings

from audit.context import AuditContext
from audit.models import AuditEvent
from identity.membership import suspend_membership
from identity.models import GroupRoleMapping, ScimToken
from identity.scim.services import revoke_scim_token
from tenants.choices import Role
from tenants.models import Membership
from tests.identity.scim_support import ScimClient, scim_token

pytestmark = pytest.mark.django_db
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _user(email, **extra):
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email, "active": True,
            "emails": [{"value": email, "type": "work", "primary": True}], **extra}


@pytest.fixture
def scim(org):
    return ScimClient(scim_token(org))


def _create(scim, email, **extra):
    answer = scim.post("/Users", _user(email, **extra))
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def _error(answer, status, scim_type=None):
    body = answer.json()
    assert answer.status_code == status, body
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"]
    assert body.get("scimType") == scim_type
    return body


# --- authentication -----------------------------------------------------------------------------------

def test_missing_malformed_unknown_and_revoked_tokens_are_401_with_a_scim_error(org, token_for):
    for client in (ScimClient(None), ScimClient("csmscim_" + "x" * 40), ScimClient(token_for(org, Role.ADMIN))):
        answer = client.get("/Users")
        _error(answer, 401)
        assert answer["WWW-Authenticate"].startswith("Bearer")
    plaintext = scim_token(org)
    assert ScimClient(plaintext).get("/Users").status_code == 200
    revoke_scim_token(AuditContext.system("test"), ScimToken.objects.get(org=org, revoked_at=None,
                                                                         prefix=plaintext[:16]))
    _error(ScimClient(plaintext).get("/Users"), 401)
    refused = AuditEvent.objects.get(org=org, action="access.denied")
    assert refused.actor_label == f"SCIM ({plaintext[:16]}…)" and refused.after["path"] == "/scim/v2/Users"


def test_a_scim_token_is_not_an_api_token(org, api):
    answer = api(token=scim_token(org)).get(f"/api/v2/environments/{org.slug}")
    assert answer.status_code == 401


def test_token_use_is_recorded(org):
    plaintext = scim_token(org)
    ScimClient(plaintext).get("/Users", REMOTE_ADDR="203.0.113.9")
    token = ScimToken.objects.get(org=org)
    assert token.last_used_at is not None and token.last_used_ip == "203.0.113.9"


# --- isolation ----------------------------------------------------------------------------------------

def test_another_orgs_token_never_sees_this_orgs_users_or_groups(org, other_org, scim):
    user_id = _create(scim, "ann@acme.example")
    group_id = scim.post("/Groups", {"displayName": "eng", "members": [{"value": user_id}]}).json()["id"]
    globex = ScimClient(scim_token(other_org))
    assert globex.get("/Users").json()["totalResults"] == 0
    assert globex.get('/Users?filter=userName%20eq%20%22ann@acme.example%22').json()["Resources"] == []
    for path in (f"/Users/{user_id}", f"/Groups/{group_id}"):
        _error(globex.get(path), 404)
        _error(globex.patch(path, {"Operations": [{"op": "replace", "value": {"active": False}}]}), 404)
        _error(globex.delete(path), 404)
    _error(globex.put(f"/Users/{user_id}", _user("ann@acme.example")), 404)
    # Naming this org's user as a member of the other org's group is refused, not linked.
    _error(globex.post("/Groups", {"displayName": "steal", "members": [{"value": user_id}]}), 400, "invalidValue")
    assert Membership.objects.get(org=org, user__email="ann@acme.example").suspended_at is None


def test_the_same_person_provisioned_by_two_orgs_has_two_ids(org, other_org, scim):
    ours = _create(scim, "both@example.com")
    theirs = _create(ScimClient(scim_token(other_org)), "both@example.com")
    assert ours != theirs
    assert Membership.objects.filter(user__email="both@example.com").count() == 2


# --- lists, paging, filters ---------------------------------------------------------------------------

def test_paging_is_stable_and_bounded(org, scim, settings):
    ids = [_create(scim, f"user{i}@acme.example") for i in range(5)]
    page = scim.get("/Users?startIndex=2&count=2").json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [r["id"] for r in page["Resources"]] == ids[1:3]
    assert [r["id"] for r in scim.get("/Users?startIndex=5&count=10").json()["Resources"]] == ids[4:]
    assert scim.get("/Users?count=0").json()["Resources"] == []
    assert scim.get("/Users?startIndex=0").json()["startIndex"] == 1  # less than 1 is 1 (RFC 7644 §3.4.2.4)
    settings.CSM_SCIM_MAX_RESULTS = 3
    assert scim.get("/Users?count=100").json()["itemsPerPage"] == 3
    assert scim.get("/Users").json()["itemsPerPage"] == 3
    _error(scim.get("/Users?count=many"), 400, "invalidValue")


@pytest.mark.parametrize(("expression", "expected"), [
    ('userName eq "ANN@acme.example"', ["ann"]),
    ('USERNAME Eq "ann@acme.example"', ["ann"]),
    ('externalId eq "ext-bob"', ["bob"]),
    ('externalId eq "EXT-BOB"', []),  # externalId is caseExact
    ('userName sw "b"', ["bob"]),
    ('userName co "@acme"', ["ann", "bob"]),
    ('userName ew ".example" and active eq false', ["bob"]),
    ('userName eq "ann@acme.example" or userName eq "bob@acme.example"', ["ann", "bob"]),
    ('not (userName eq "ann@acme.example")', ["bob"]),
    ('externalId pr', ["bob"]),
    ('userName ne "ann@acme.example"', ["bob"]),
    ('emails[type eq "work" and value co "bob"]', ["bob"]),
    ('emails[type eq "work"].value eq "Ann@Acme.example"', ["ann"]),
    ('emails.value eq "bob@acme.example"', ["bob"]),
    ('name.givenName eq "Ann"', ["ann"]),
    ('(active eq true) and (name.givenName sw "a" or name.givenName sw "z")', ["ann"]),
])
def test_filters(scim, expression, expected):
    by_id = {_create(scim, "ann@acme.example", name={"givenName": "Ann"}): "ann",
             _create(scim, "bob@acme.example", externalId="ext-bob", active=False): "bob"}
    answer = scim.get("/Users", QUERY_STRING=f"filter={expression.replace(' ', '%20').replace('&', '%26')}")
    assert answer.status_code == 200, answer.content
    assert sorted(by_id[r["id"]] for r in answer.json()["Resources"]) == expected


@pytest.mark.parametrize("expression", [
    'userName eq', 'userName foo "x"', 'userName eq ann', '(userName eq "x"', 'userName eq "x")',
    'userName eq "x" and', 'emails[type eq "work"', '"x" eq userName', 'userName eq "unterminated', '',
    "(" * 40 + 'userName eq "x"' + ")" * 40,
])
def test_a_malformed_filter_is_400_invalid_filter(scim, expression):
    answer = scim.get("/Users", QUERY_STRING="filter=" + expression.replace(" ", "%20"))
    _error(answer, 400, "invalidFilter")


def test_groups_filter_by_display_name_and_exclude_members(scim):
    user_id = _create(scim, "ann@acme.example")
    scim.post("/Groups", {"displayName": "Engineering", "members": [{"value": user_id}]})
    scim.post("/Groups", {"displayName": "Sales"})
    answer = scim.get('/Groups?filter=displayName%20eq%20%22engineering%22').json()
    assert [g["displayName"] for g in answer["Resources"]] == ["Engineering"]
    assert answer["Resources"][0]["members"][0]["value"] == user_id
    trimmed = scim.get("/Groups?excludedAttributes=members").json()["Resources"]
    assert all("members" not in g for g in trimmed) and len(trimmed) == 2
    only = scim.get(f"/Users/{user_id}?attributes=userName").json()
    assert set(only) == {"schemas", "id", "userName"}


# --- writes and their errors --------------------------------------------------------------------------

def test_an_already_provisioned_user_name_is_409_uniqueness(scim):
    _create(scim, "ann@acme.example")
    _error(scim.post("/Users", _user("ANN@acme.example")), 409, "uniqueness")
    # The same person under another userName is the same csm account: refused too.
    _error(scim.post("/Users", _user("ann2", emails=[{"value": "ann@acme.example", "primary": True}])),
           409, "uniqueness")
    scim.post("/Groups", {"displayName": "eng"})
    _error(scim.post("/Groups", {"displayName": "ENG"}), 409, "uniqueness")


def test_invalid_users_are_400_naming_the_attribute(scim):
    body = _error(scim.post("/Users", {"userName": "no-email-here"}), 400, "invalidValue")
    assert "email" in body["detail"]
    assert "userName" in _error(scim.post("/Users", {"emails": [{"value": "a@b.example"}]}), 400,
                                "invalidValue")["detail"]
    assert "active" in _error(scim.post("/Users", _user("a@b.example", active="maybe")), 400,
                              "invalidValue")["detail"]
    answer = scim.client.generic("POST", "/scim/v2/Users", data="{not json", content_type="application/scim+json",
                                 **scim.headers)
    _error(answer, 400, "invalidSyntax")


def test_patch_errors(scim):
    user_id = _create(scim, "ann@acme.example")
    path = f"/Users/{user_id}"
    _error(scim.patch(path, {"Operations": [{"op": "merge", "path": "active", "value": False}]}), 400,
           "invalidSyntax")
    _error(scim.patch(path, {"Operations": []}), 400, "invalidSyntax")
    _error(scim.patch(path, {"Operations": [{"op": "remove"}]}), 400, "noTarget")
    _error(scim.patch(path, {"Operations": [{"op": "replace", "path": "name..x", "value": 1}]}), 400, "invalidPath")
    _error(scim.patch(path, {"Operations": [{"op": "replace", "path": "emails[type eq]", "value": "x"}]}), 400,
           "invalidFilter")
    _error(scim.patch(path, {"Operations": [{"op": "remove", "path": "userName"}]}), 400, "invalidValue")
    assert scim.get(path).json()["userName"] == "ann@acme.example"  # nothing of a refused PATCH stays


def test_patch_add_and_remove_with_and_without_path(scim):
    user_id = _create(scim, "ann@acme.example")
    path = f"/Users/{user_id}"
    answer = scim.patch(path, {"Operations": [
        {"op": "add", "path": "emails", "value": [{"value": "ann@home.example", "type": "home"}]},
        {"op": "Add", "value": {"title": "Engineer", "name": {"givenName": "Ann"}}},
    ]}).json()
    assert [e["type"] for e in answer["emails"]] == ["work", "home"] and answer["title"] == "Engineer"
    answer = scim.patch(path, {"Operations": [
        {"op": "REMOVE", "path": 'emails[type eq "home"]'}, {"op": "remove", "path": "title"}]}).json()
    assert [e["type"] for e in answer["emails"]] == ["work"] and "title" not in answer
    assert answer["name"] == {"givenName": "Ann"}


def test_put_replaces_the_user(org, scim):
    user_id = _create(scim, "ann@acme.example", externalId="e1", title="Engineer")
    answer = scim.put(f"/Users/{user_id}", _user("ann@acme.example", externalId="e2"))
    assert answer.status_code == 200
    assert answer.json()["externalId"] == "e2" and "title" not in answer.json()
    event = AuditEvent.objects.filter(org=org, action="scim.user_updated").latest("seq")
    assert event.before == {"externalId": "e1"} and event.actor_label.startswith("SCIM (csmscim_")


def test_the_last_owner_is_never_suspended_or_demoted(org, owner, scim):
    user_id = _create(scim, owner.email)
    assert Membership.objects.get(org=org, user=owner).role == Role.OWNER  # an existing member keeps their role
    body = _error(scim.patch(f"/Users/{user_id}", {"Operations": [{"op": "replace", "value": {"active": False}}]}),
                  409)
    assert "owner" in body["detail"]
    assert Membership.objects.get(org=org, user=owner).suspended_at is None
    assert scim.get(f"/Users/{user_id}").json()["active"] is True  # the refused PATCH left nothing behind
    GroupRoleMapping.objects.create(org=org, group="readers", role=Role.READER)
    assert scim.post("/Groups", {"displayName": "readers", "members": [{"value": user_id}]}).status_code == 201
    assert Membership.objects.get(org=org, user=owner).role == Role.OWNER
    skipped = AuditEvent.objects.get(org=org, action="scim.role_change_skipped")
    assert skipped.after["role"] == Role.READER and skipped.target_label == owner.email


def test_scim_reactivates_only_what_scim_suspended(org, scim, member_of):
    person = member_of(org, Role.MEMBER, "mallory@acme.example")
    user_id = _create(scim, "mallory@acme.example")
    membership = Membership.objects.get(org=org, user=person)
    suspend_membership(AuditContext.system("admin"), membership, reason="admin: left the company")
    scim.patch(f"/Users/{user_id}", {"Operations": [{"op": "replace", "path": "active", "value": True}]})
    membership.refresh_from_db()
    assert membership.suspended_at is not None and membership.suspended_reason.startswith("admin")


def test_plain_json_is_accepted_and_answered(scim):
    answer = scim.request("POST", "/Users", _user("ann@acme.example"), content_type="application/json",
                          HTTP_ACCEPT="application/json")
    assert answer.status_code == 201 and answer["Content-Type"].startswith("application/json")
    answer = scim.get("/Users", HTTP_ACCEPT="text/html")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("application/scim+json")


# --- discovery ----------------------------------------------------------------------------------------

def test_service_provider_config(scim):
    config = scim.get("/ServiceProviderConfig").json()
    assert config["patch"] == {"supported": True}
    assert config["filter"] == {"supported": True, "maxResults": settings.CSM_SCIM_MAX_RESULTS}
    assert not any(config[name]["supported"] for name in ("bulk", "changePassword", "sort", "etag"))
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_and_schemas(scim):
    types = scim.get("/ResourceTypes").json()
    assert {t["endpoint"] for t in types["Resources"]} == {"/Users", "/Groups"}
    assert scim.get("/ResourceTypes/User").json()["schema"] == "urn:ietf:params:scim:schemas:core:2.0:User"
    user = scim.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    names = {a["name"] for a in user["attributes"]}
    assert {"userName", "emails", "active", "groups"} <= names
    _error(scim.get("/Schemas/urn:nope"), 404)
    assert scim.get("/users").status_code == 200  # lower-case resource names too


def test_put_group_replaces_name_and_members_and_roles_follow(org, scim):
    GroupRoleMapping.objects.create(org=org, group="admins", role=Role.ADMIN)
    ann, bob = _create(scim, "ann@acme.example"), _create(scim, "bob@acme.example")
    group_id = scim.post("/Groups", {"displayName": "staff", "members": [{"value": ann}]}).json()["id"]
    answer = scim.put(f"/Groups/{group_id}", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                               "displayName": "admins", "members": [{"value": bob}]})
    assert answer.status_code == 200
    assert [m["value"] for m in answer.json()["members"]] == [bob]
    roles = dict(Membership.objects.filter(org=org, source="scim").values_list("user__email", "role"))
    assert roles == {"ann@acme.example": Role.MEMBER, "bob@acme.example": Role.ADMIN}
    # Without "members", a PUT keeps them.
    scim.put(f"/Groups/{group_id}", {"displayName": "admins"})
    assert [m["value"] for m in scim.get(f"/Groups/{group_id}").json()["members"]] == [bob]
    _error(scim.patch(f"/Groups/{group_id}", {"Operations": [
        {"op": "add", "path": "members", "value": [{"value": "not-a-user"}]}]}), 400, "invalidValue")


def test_a_member_removed_in_csm_comes_back_with_the_next_idp_update(org, scim, owner):
    user_id = _create(scim, "ann@acme.example")
    Membership.objects.filter(org=org, user__email="ann@acme.example").delete()
    scim.patch(f"/Users/{user_id}", {"Operations": [{"op": "replace", "path": "displayName", "value": "Ann"}]})
    assert Membership.objects.get(org=org, user__email="ann@acme.example").source == "scim"


def test_an_unknown_scim_endpoint_is_a_scim_404(scim):
    answer = scim.post("/Bulk", {"Operations": []})
    _error(answer, 404)
    assert answer["Content-Type"] == "application/scim+json"
