"""API tokens: keyed hash at rest, shown once, expiry, revoke, rotation grace, auth header forms."""

import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.context import AuditContext
from tenants.choices import Role
from tenants.models import ApiToken, ServiceAccount
from tenants.services import create_api_token, rotate_api_token
from tenants.tokens import TOKEN_RE, hash_token

pytestmark = pytest.mark.django_db

ORG_URL = "/api/v2/orgs/acme"


def _new_sa_token(owner_api, name="agent", role="snapshotter"):
    account = owner_api.post(f"{ORG_URL}/service-accounts", {"name": name, "role": role}, format="json").json()
    created = owner_api.post(f"{ORG_URL}/service-accounts/{account['id']}/tokens", {"name": "ci"}, format="json")
    assert created.status_code == 201, created.content
    return account, created.json()


def test_token_is_stored_only_as_a_keyed_hash(owner_api, org):
    _, created = _new_sa_token(owner_api)
    secret = created["token"]
    assert TOKEN_RE.match(secret)
    row = ApiToken.objects.get(pk=created["id"])
    assert row.token_hash == hash_token(secret) and secret not in row.token_hash
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apitoken")
        dumped = repr(cursor.fetchall())
        cursor.execute("SELECT before::text, after::text, target_label FROM audit_auditevent")
        dumped += repr(cursor.fetchall())
    assert secret not in dumped and secret[12:] not in dumped


def test_secret_is_only_in_the_create_response(owner_api, org):
    account, created = _new_sa_token(owner_api)
    secret = created["token"]
    listing = owner_api.get(f"{ORG_URL}/service-accounts/{account['id']}/tokens")
    detail = owner_api.get(f"{ORG_URL}/service-accounts/{account['id']}/tokens/{created['id']}")
    for response in (listing, detail):
        assert response.status_code == 200
        assert secret not in response.content.decode() and '"token"' not in response.content.decode()
    assert listing.json()["results"][0]["prefix"] == secret[:12]


def test_bearer_and_basic_with_empty_password(api, org, token_for):
    secret = token_for(org, Role.READER)
    assert api(token=secret).get(ORG_URL).status_code == 200
    client = api()
    basic = base64.b64encode(f"{secret}:".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {basic}")
    assert client.get(ORG_URL).json()["slug"] == "acme"
    # kosli's flow/trail commands: empty user name, the token as the password.
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f":{secret}".encode()).decode())
    assert client.get(ORG_URL).json()["slug"] == "acme"
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{secret}:pw".encode()).decode())
    assert client.get(ORG_URL).status_code == 401


@pytest.mark.parametrize("header", ["Bearer", "Token abc", "Basic !!!notbase64", "Bearer csm_" + "x" * 40, "Bearer"])
def test_malformed_or_unknown_token_is_401_with_www_authenticate(api, org, header):
    client = api()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(ORG_URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response.json()["error"]["message"]


def test_no_credentials_is_401(api, org):
    response = api().get(ORG_URL)
    assert response.status_code == 401 and "WWW-Authenticate" in response
    assert response.json()["error"]["code"] == "not_authenticated"


def test_low_role_is_403_naming_the_permission(api, org, token_for):
    response = api(token=token_for(org, Role.READER)).post(f"{ORG_URL}/service-accounts", {"name": "x"},
                                                           format="json")
    assert response.status_code == 403
    assert "tokens.manage" in response.json()["error"]["message"]


def test_expired_token_is_refused(api, org):
    account = ServiceAccount.objects.create(org=org, name="old", role=Role.READER)
    token, secret = create_api_token(AuditContext.system(), org, "t", service_account=account,
                                     expires_at=timezone.now() + timedelta(minutes=5))
    assert api(token=secret).get(ORG_URL).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api(token=secret).get(ORG_URL)
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


def test_expiry_in_the_past_is_a_400_naming_the_field(owner_api, org):
    account = owner_api.post(f"{ORG_URL}/service-accounts", {"name": "a1"}, format="json").json()
    response = owner_api.post(f"{ORG_URL}/service-accounts/{account['id']}/tokens",
                              {"name": "t", "expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert response.status_code == 400 and "expires_at" in response.json()["error"]["fields"]


def test_revoked_token_is_refused(owner_api, api, org):
    account, created = _new_sa_token(owner_api, role="reader")
    client = api(token=created["token"])
    assert client.get(ORG_URL).status_code == 200
    url = f"{ORG_URL}/service-accounts/{account['id']}/tokens/{created['id']}"
    assert owner_api.delete(url).status_code == 204
    response = client.get(ORG_URL)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert owner_api.get(url).json()["status"] == "revoked"


def test_rotation_keeps_the_old_token_for_the_grace_period(owner_api, api, org):
    account, created = _new_sa_token(owner_api, role="reader")
    old = created["token"]
    rotated = owner_api.post(f"{ORG_URL}/service-accounts/{account['id']}/tokens/{created['id']}/rotate",
                             {"grace_seconds": 3600}, format="json")
    assert rotated.status_code == 201
    new = rotated.json()["token"]
    assert new != old and TOKEN_RE.match(new)
    assert api(token=old).get(ORG_URL).status_code == 200  # still inside the grace period
    assert api(token=new).get(ORG_URL).status_code == 200
    row = ApiToken.objects.get(pk=created["id"])
    assert row.status == "rotating" and row.rotated_to_id == rotated.json()["id"]
    assert timedelta(minutes=59) < row.expires_at - timezone.now() <= timedelta(hours=1)
    # the grace period ends: the old token stops, the new one goes on
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api(token=old).get(ORG_URL).status_code == 401
    assert api(token=new).get(ORG_URL).status_code == 200
    again = owner_api.post(f"{ORG_URL}/service-accounts/{account['id']}/tokens/{created['id']}/rotate", {},
                           format="json")
    assert again.status_code == 409


def test_rotation_without_grace_stops_the_old_token_now(org, api):
    account = ServiceAccount.objects.create(org=org, name="now", role=Role.READER)
    token, old = create_api_token(AuditContext.system(), org, "t", service_account=account)
    _, new = rotate_api_token(AuditContext.system(), token, 0)
    assert api(token=old).get(ORG_URL).status_code == 401
    assert api(token=new).get(ORG_URL).status_code == 200


def test_last_used_at_is_recorded(api, org, token_for):
    secret = token_for(org, Role.READER)
    assert ApiToken.objects.get(token_hash=hash_token(secret)).last_used_at is None
    api(token=secret).get(ORG_URL)
    assert ApiToken.objects.get(token_hash=hash_token(secret)).last_used_at is not None


def test_deactivated_service_account_tokens_stop_working(owner_api, api, org):
    account, created = _new_sa_token(owner_api, role="reader")
    assert owner_api.delete(f"{ORG_URL}/service-accounts/{account['id']}").status_code == 204
    assert api(token=created["token"]).get(ORG_URL).status_code == 401
    assert owner_api.get(f"{ORG_URL}/service-accounts/{account['id']}").json()["active"] is False


def test_personal_token_acts_with_the_members_role(api, org, member_of):
    reader = member_of(org, Role.READER)
    created = api(user=reader).post(f"{ORG_URL}/tokens", {"name": "laptop"}, format="json")
    assert created.status_code == 201
    client = api(token=created.json()["token"])
    assert client.get(f"{ORG_URL}/members").status_code == 200
    denied = client.get(f"{ORG_URL}/audit-events")
    assert denied.status_code == 403 and "audit.view" in denied.json()["error"]["message"]
    assert api(user=reader).get(f"{ORG_URL}/tokens").json()["count"] == 1
    assert "token" not in api(user=reader).get(f"{ORG_URL}/tokens").json()["results"][0]


def test_personal_tokens_of_others_are_invisible(api, org, owner, member_of):
    member = member_of(org, Role.MEMBER)
    mine = api(user=member).post(f"{ORG_URL}/tokens", {"name": "m"}, format="json").json()
    assert api(user=owner).get(f"{ORG_URL}/tokens").json()["count"] == 0
    assert api(user=owner).delete(f"{ORG_URL}/tokens/{mine['id']}").status_code == 404


def test_service_accounts_have_no_personal_tokens(api, org, token_for):
    client = api(token=token_for(org, Role.ADMIN))
    assert client.get(f"{ORG_URL}/tokens").json()["count"] == 0
    response = client.post(f"{ORG_URL}/tokens", {"name": "x"}, format="json")
    assert response.status_code == 400


def test_removing_a_member_revokes_their_personal_tokens(api, org, owner, member_of):
    member = member_of(org, Role.MEMBER)
    secret = api(user=member).post(f"{ORG_URL}/tokens", {"name": "m"}, format="json").json()["token"]
    membership_id = api(user=owner).get(f"{ORG_URL}/members").json()["results"]
    membership_id = next(m["id"] for m in membership_id if m["user"]["id"] == member.pk)
    assert api(user=owner).delete(f"{ORG_URL}/members/{membership_id}").status_code == 204
    assert api(token=secret).get(ORG_URL).status_code == 401


def test_a_token_only_works_in_its_own_org(api, org, other_org, token_for):
    secret = token_for(org, Role.ADMIN)
    response = api(token=secret).get("/api/v2/orgs/globex")
    assert response.status_code == 404 and "Globex" not in response.content.decode()
    assert [o["slug"] for o in api(token=secret).get("/api/v2/orgs").json()["results"]] == ["acme"]
