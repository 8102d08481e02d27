"""REST API of orgs, members, invitations and service accounts."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tenants.choices import Role
from tenants.models import Invitation, Membership

pytestmark = pytest.mark.django_db

ORG_URL = "/api/v2/orgs/acme"


def _member_id(client, user):
    results = client.get(f"{ORG_URL}/members").json()["results"]
    return next(m["id"] for m in results if m["user"]["id"] == user.pk)


def test_list_orgs_of_the_caller(api, org, other_org, owner, make_org):
    make_org("second", owner)
    body = api(user=owner).get("/api/v2/orgs").json()
    assert [(o["slug"], o["role"]) for o in body["results"]] == [("acme", "owner"), ("second", "owner")]
    assert body["count"] == 2


def test_get_and_rename_the_org(owner_api, org):
    assert owner_api.get(ORG_URL).json() == {"slug": "acme", "name": "Acme Corp",
                                             "created_at": owner_api.get(ORG_URL).json()["created_at"],
                                             "role": "owner", "report_body_retention_days": None,
                                             "evidence_file_retention_days": None}
    response = owner_api.patch(ORG_URL, {"name": "Acme Inc"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Acme Inc"
    response = owner_api.patch(ORG_URL, {"name": ""}, format="json")
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]


def test_slug_in_the_body_is_ignored(owner_api, org):
    owner_api.patch(ORG_URL, {"name": "X", "slug": "other"}, format="json")
    org.refresh_from_db()
    assert org.slug == "acme"


def test_members_list_is_paginated(owner_api, org, member_of):
    for _ in range(3):
        member_of(org, Role.READER)
    body = owner_api.get(f"{ORG_URL}/members?per_page=2").json()
    assert body["count"] == 4 and len(body["results"]) == 2 and body["next"]


def test_change_role_and_remove(owner_api, org, member_of):
    user = member_of(org, Role.MEMBER)
    member_id = _member_id(owner_api, user)
    response = owner_api.patch(f"{ORG_URL}/members/{member_id}", {"role": "admin"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "admin"
    bad = owner_api.patch(f"{ORG_URL}/members/{member_id}", {"role": "king"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()["error"]["fields"]
    assert owner_api.delete(f"{ORG_URL}/members/{member_id}").status_code == 204
    assert not Membership.objects.filter(pk=member_id).exists()


def test_last_owner_is_protected(owner_api, org, owner):
    member_id = _member_id(owner_api, owner)
    demote = owner_api.patch(f"{ORG_URL}/members/{member_id}", {"role": "admin"}, format="json")
    assert demote.status_code == 409 and "at least one owner" in demote.json()["error"]["message"]
    assert owner_api.delete(f"{ORG_URL}/members/{member_id}").status_code == 409


def test_second_owner_makes_stepping_down_possible(owner_api, org, owner, member_of):
    other = member_of(org, Role.ADMIN)
    owner_api.patch(f"{ORG_URL}/members/{_member_id(owner_api, other)}", {"role": "owner"}, format="json")
    response = owner_api.patch(f"{ORG_URL}/members/{_member_id(owner_api, owner)}", {"role": "admin"},
                               format="json")
    assert response.status_code == 200


def test_admin_cannot_touch_owners(api, org, owner, member_of):
    admin = member_of(org, Role.ADMIN)
    client = api(user=admin)
    owner_id = _member_id(client, owner)
    for response in (
        client.patch(f"{ORG_URL}/members/{owner_id}", {"role": "member"}, format="json"),
        client.delete(f"{ORG_URL}/members/{owner_id}"),
        client.patch(f"{ORG_URL}/members/{_member_id(client, admin)}", {"role": "owner"}, format="json"),
        client.post(f"{ORG_URL}/invitations", {"email": "boss@example.com", "role": "owner"}, format="json"),
    ):
        assert response.status_code == 403, response.content
        assert "owners.manage" in response.json()["error"]["message"]


def test_invitation_api_create_list_revoke(owner_api, org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = owner_api.post(f"{ORG_URL}/invitations", {"email": "Dev@Example.com", "role": "member"},
                                 format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "dev@example.com" and body["status"] == "pending"
    assert body["accept_url"] in mail.outbox[0].body
    listing = owner_api.get(f"{ORG_URL}/invitations").json()
    assert listing["count"] == 1 and "accept_url" not in listing["results"][0]
    assert owner_api.delete(f"{ORG_URL}/invitations/{body['id']}").status_code == 204
    assert owner_api.get(f"{ORG_URL}/invitations/{body['id']}").json()["status"] == "revoked"
    assert owner_api.delete(f"{ORG_URL}/invitations/{body['id']}").status_code == 409


def test_inviting_a_member_is_a_conflict_and_bad_email_is_400(owner_api, org, owner):
    response = owner_api.post(f"{ORG_URL}/invitations", {"email": "owner@example.com"}, format="json")
    assert response.status_code == 409
    response = owner_api.post(f"{ORG_URL}/invitations", {"email": "not-an-email"}, format="json")
    assert response.status_code == 400 and "email" in response.json()["error"]["fields"]


def test_reinviting_replaces_the_pending_invitation(owner_api, org):
    first = owner_api.post(f"{ORG_URL}/invitations", {"email": "a@example.com"}, format="json").json()
    owner_api.post(f"{ORG_URL}/invitations", {"email": "a@example.com", "role": "reader"}, format="json")
    assert Invitation.objects.get(pk=first["id"]).status == "revoked"
    assert Invitation.objects.filter(org=org, email="a@example.com", revoked_at__isnull=True).count() == 1
    assert Invitation.objects.get(pk=first["id"]).expires_at > timezone.now() + timedelta(hours=1)


def test_service_account_crud(owner_api, org):
    created = owner_api.post(f"{ORG_URL}/service-accounts",
                             {"name": "prod-agent", "role": "snapshotter", "description": "k8s"}, format="json")
    assert created.status_code == 201
    account = created.json()
    assert account["active"] and account["role"] == "snapshotter"
    duplicate = owner_api.post(f"{ORG_URL}/service-accounts", {"name": "prod-agent"}, format="json")
    assert duplicate.status_code == 409
    bad = owner_api.post(f"{ORG_URL}/service-accounts", {"name": "Bad Name!"}, format="json")
    assert bad.status_code == 400 and "name" in bad.json()["error"]["fields"]
    bad = owner_api.post(f"{ORG_URL}/service-accounts", {"name": "boss", "role": "owner"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()["error"]["fields"]
    patched = owner_api.patch(f"{ORG_URL}/service-accounts/{account['id']}", {"role": "reader"}, format="json")
    assert patched.json()["role"] == "reader"
    assert owner_api.get(f"{ORG_URL}/service-accounts").json()["count"] == 1


def test_unknown_ids_are_404_in_the_error_format(owner_api, org):
    for url in (f"{ORG_URL}/members/999999", f"{ORG_URL}/service-accounts/999999/tokens",
                f"{ORG_URL}/invitations/999999", "/api/v2/orgs/nope", "/api/v2/nothing-here"):
        response = owner_api.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
