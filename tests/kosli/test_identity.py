"""kosli CLI conformance (issue 15, h1): service accounts, their API keys and the default org, sent the way
the CLI sends them (``tests/kosli/cli.py``) and read the way it reads the answers:

- ``serviceAccount`` (cmd/kosli/serviceAccount.go): ``name``, ``description``, ``privilege`` (strings),
  ``created_at`` (float64 epoch), the list a JSON array of those;
- ``apiKeyResponse`` / ``apiKeyMetadata`` (cmd/kosli/apiKey.go): ``id``, ``key``, ``description``
  (strings), ``created_at``, ``expires_at``, ``last_used_at``, ``grace_period_expires_at`` (float64 epoch;
  null or 0 reads as none);
- ``defaultOrg`` (cmd/kosli/getDefaultOrg.go): ``default_org_name`` (string).
"""

import time

import pytest

from audit.models import AuditEvent
from tenants.choices import Role
from tenants.models import ApiToken, ServiceAccount, UserSettings
from tenants.services import default_org
from tests.kosli.cli import cli, cli_error

pytestmark = pytest.mark.django_db

SA = "/api/v2/service-accounts"


@pytest.fixture
def admin_token(org, token_for):
    return token_for(org, Role.ADMIN, name="kosli-admin")


def _epoch(value):
    """A Go ``float64`` field: a JSON number (int or float), never a string."""
    assert isinstance(value, (int, float)) and not isinstance(value, bool), value
    return value


def _last(org, action):
    return AuditEvent.objects.filter(org=org, action=action).order_by("-seq").first()


def _create_account(token, name="ci-bot", privilege="member", description="CI service account"):
    payload = {"name": name, "description": description, "privilege": privilege} if description else \
        {"name": name, "privilege": privilege}
    return cli(token, "POST", f"{SA}/acme", payload)


# --- service accounts -----------------------------------------------------------------------------------

def test_create_get_list_service_account(org, admin_token):
    """cmd/kosli/createServiceAccount.go ``createServiceAccountOptions.run``: POST
    /api/v2/service-accounts/{org} with ``createServiceAccountPayload`` (name, description omitempty,
    privilege); 201. cmd/kosli/getServiceAccount.go and listServiceAccounts.go read ``serviceAccount``
    (printServiceAccountAsTable / printServiceAccountsListAsTable): a JSON object, and an array of them."""
    before = time.time()
    created = _create_account(admin_token)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "ci-bot" and body["description"] == "CI service account"
    assert body["privilege"] == "member"
    assert before - 1 <= _epoch(body["created_at"]) <= time.time() + 1
    account = ServiceAccount.objects.get(org=org, name="ci-bot")
    assert account.role == Role.MEMBER
    event = _last(org, "service_account.created")
    assert event.target_label.endswith("ci-bot") or event.after["name"] == "ci-bot"
    assert event.actor_type == "service_account"

    got = cli(admin_token, "GET", f"{SA}/acme/ci-bot")
    assert got.status_code == 200
    assert got.json() == body

    listed = cli(admin_token, "GET", f"{SA}/acme")
    assert listed.status_code == 200
    rows = listed.json()
    assert isinstance(rows, list)
    by_name = {row["name"]: row for row in rows}
    assert by_name["ci-bot"] == body
    assert {"kosli-admin", "ci-bot"} <= set(by_name)
    for row in rows:
        assert isinstance(row["description"], str) and isinstance(row["privilege"], str)
        _epoch(row["created_at"])


def test_create_service_account_without_description(admin_token):
    """createServiceAccountPayload: ``description`` is omitempty, so a create without --description sends
    only name and privilege; the answer's description is "" (the CLI prints N/A)."""
    created = _create_account(admin_token, name="no-desc", privilege="snapshotter", description=None)
    assert created.status_code == 201, created.content
    assert created.json()["description"] == ""
    assert created.json()["privilege"] == "snapshotter"


@pytest.mark.parametrize("privilege", ["owner", "superuser", ""])
def test_create_service_account_refuses_unknown_privilege(admin_token, privilege):
    """serviceAccountPrivilegeFlag (cmd/kosli/root.go) lists admin, member, snapshotter, reader; anything
    else (owner included) is a 400 naming ``privilege``, printed by the CLI (Client.Do)."""
    answer = _create_account(admin_token, privilege=privilege)
    assert answer.status_code == 400
    assert "privilege" in answer.json()["error"]["fields"]
    assert "privilege" in cli_error(answer)


def test_create_service_account_refuses_bad_name_and_duplicates(admin_token):
    """A name csm cannot use in a path is a 400 naming ``name``; a second account of the same name is a 400
    too, not a 409, which the CLI would retry as a lock conflict (internal/requests customCheckRetry)."""
    bad = _create_account(admin_token, name="Not A Slug")
    assert bad.status_code == 400
    assert "name" in bad.json()["error"]["fields"]
    assert _create_account(admin_token).status_code == 201
    again = _create_account(admin_token)
    assert again.status_code == 400
    assert "already exists" in cli_error(again)


def test_update_service_account(org, admin_token):
    """cmd/kosli/updateServiceAccount.go ``updateServiceAccountOptions.run``: PATCH
    /api/v2/service-accounts/{org}/{name} with only the flags given (a map); the CLI reads nothing but
    the status. The change is audited."""
    _create_account(admin_token)
    only_description = cli(admin_token, "PATCH", f"{SA}/acme/ci-bot", {"description": "new description"})
    assert only_description.status_code == 200, only_description.content
    assert only_description.json()["description"] == "new description"
    assert only_description.json()["privilege"] == "member"
    only_privilege = cli(admin_token, "PATCH", f"{SA}/acme/ci-bot", {"privilege": "admin"})
    assert only_privilege.status_code == 200
    assert only_privilege.json() == {**only_description.json(), "privilege": "admin"}
    assert ServiceAccount.objects.get(org=org, name="ci-bot").role == Role.ADMIN
    event = _last(org, "service_account.updated")
    assert event.before == {"role": "member"} and event.after == {"role": "admin"}

    assert cli(admin_token, "PATCH", f"{SA}/acme/ci-bot", {"privilege": "owner"}).status_code == 400
    empty = cli(admin_token, "PATCH", f"{SA}/acme/ci-bot", {})
    assert empty.status_code == 400
    assert "privilege" in empty.json()["error"]["fields"]


def test_delete_service_account_deactivates_and_frees_the_name(org, admin_token):
    """cmd/kosli/deleteServiceAccount.go ``deleteServiceAccountOptions.run``: DELETE
    /api/v2/service-accounts/{org}/{name} per name; only the status is read (kosli answers "OK"). csm
    deactivates: the keys stop working, the history stays, the name can be used again."""
    _create_account(admin_token)
    key = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "ci"}).json()["key"]
    assert cli(key, "GET", f"{SA}/acme").status_code == 403  # a member's key: alive, lacks tokens.manage

    deleted = cli(admin_token, "DELETE", f"{SA}/acme/ci-bot")
    assert deleted.status_code == 200
    assert deleted.json() == "OK"
    assert cli(key, "GET", f"{SA}/acme").status_code == 401
    assert cli(admin_token, "GET", f"{SA}/acme/ci-bot").status_code == 404
    assert "ci-bot" not in {row["name"] for row in cli(admin_token, "GET", f"{SA}/acme").json()}
    assert _last(org, "service_account.deactivated").after["tokens_revoked"] == 1
    assert _create_account(admin_token).status_code == 201
    assert ServiceAccount.objects.filter(org=org, name="ci-bot").count() == 2

    missing = cli(admin_token, "DELETE", f"{SA}/acme/nobody")
    assert missing.status_code == 404
    assert "nobody" in cli_error(missing)


# --- API keys -------------------------------------------------------------------------------------------

def test_create_api_key_shows_the_key_once(org, admin_token):
    """cmd/kosli/createApiKey.go ``createApiKeyOptions.run``: POST
    /api/v2/service-accounts/{org}/{sa}/api-keys with ``createApiKeyPayload`` (description, expires_at
    *int64 omitempty); printApiKeyAsTable reads ``apiKeyResponse``: id, key, description (string),
    created_at, expires_at (float64). The key works as a token; get/list never show it again."""
    _create_account(admin_token)
    expires = int(time.time()) + 86400
    created = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "key for CI",
                                                                      "expires_at": expires})
    assert created.status_code == 201, created.content
    body = created.json()
    assert isinstance(body["id"], str) and body["id"]
    assert isinstance(body["key"], str) and body["key"].startswith("csm_")
    assert body["description"] == "key for CI"
    _epoch(body["created_at"])
    assert _epoch(body["expires_at"]) == expires
    token = ApiToken.objects.get(pk=int(body["id"]))
    assert token.service_account.name == "ci-bot" and token.name == "key for CI"
    assert _last(org, "token.created").target_id == body["id"]

    assert cli(body["key"], "GET", f"{SA}/acme/ci-bot").status_code == 403  # authenticated as ci-bot (member)

    got = cli(admin_token, "GET", f"{SA}/acme/ci-bot/api-keys/{body['id']}")
    assert got.status_code == 200
    metadata = got.json()
    assert "key" not in metadata
    assert metadata["id"] == body["id"] and metadata["description"] == "key for CI"
    assert _epoch(metadata["expires_at"]) == expires
    assert metadata["last_used_at"] is not None  # it was used above
    _epoch(metadata["last_used_at"])


def test_create_api_key_without_expiry_and_bad_input(admin_token):
    """Without --expires-at the payload has no ``expires_at`` and the key never expires (null, which the
    CLI's optionalTimestamp prints as N/A). A blank description, a past expiry: 400 naming the field."""
    _create_account(admin_token)
    created = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "forever"})
    assert created.status_code == 201
    assert created.json()["expires_at"] is None

    blank = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": ""})
    assert blank.status_code == 400 and "description" in blank.json()["error"]["fields"]
    past = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "old", "expires_at": 1000})
    assert past.status_code == 400 and "expires_at" in past.json()["error"]["fields"]
    text = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "x", "expires_at": "soon"})
    assert text.status_code == 400 and "expires_at" in text.json()["error"]["fields"]
    nobody = cli(admin_token, "POST", f"{SA}/acme/nobody/api-keys", {"description": "x"})
    assert nobody.status_code == 404
    assert "nobody" in cli_error(nobody)


def test_list_api_keys_shows_live_keys_only(admin_token):
    """cmd/kosli/listApiKeys.go ``listApiKeysOptions.run``: GET .../{sa}/api-keys; printApiKeysListAsTable
    reads an array of ``apiKeyMetadata`` (id, description, created_at, expires_at, last_used_at) of the
    active keys; a deleted key is gone."""
    _create_account(admin_token)
    first = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "one"}).json()
    second = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "two"}).json()
    assert cli(admin_token, "DELETE", f"{SA}/acme/ci-bot/api-keys/{first['id']}").status_code == 200

    listed = cli(admin_token, "GET", f"{SA}/acme/ci-bot/api-keys")
    assert listed.status_code == 200
    rows = listed.json()
    assert [row["id"] for row in rows] == [second["id"]]
    row = rows[0]
    assert row["description"] == "two" and "key" not in row
    _epoch(row["created_at"])
    assert row["expires_at"] is None and row["last_used_at"] is None


def test_delete_api_key_revokes_it(org, admin_token):
    """cmd/kosli/deleteApiKey.go ``deleteApiKeyOptions.run``: DELETE .../{sa}/api-keys/{id} per id; only the
    status is read (kosli answers "revoked"). The key stops working at once; a second delete is a 404."""
    _create_account(admin_token)
    key = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "ci"}).json()
    deleted = cli(admin_token, "DELETE", f"{SA}/acme/ci-bot/api-keys/{key['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == "revoked"
    assert cli(key["key"], "GET", f"{SA}/acme/ci-bot").status_code == 401
    assert _last(org, "token.revoked").target_id == key["id"]
    again = cli(admin_token, "DELETE", f"{SA}/acme/ci-bot/api-keys/{key['id']}")
    assert again.status_code == 404
    assert key["id"] in cli_error(again)
    assert cli(admin_token, "GET", f"{SA}/acme/ci-bot/api-keys/not-a-number").status_code == 404


def test_rotate_api_key_keeps_the_old_one_for_the_grace_period(org, admin_token):
    """cmd/kosli/rotateApiKey.go ``rotateApiKeyOptions.run``: POST .../{sa}/api-keys/{id}/rotate with
    ``rotateApiKeyPayload`` (grace_period_hours *int, expires_at *int64, both omitempty); printApiKeysAsTable
    reads ``apiKeyResponse`` with ``grace_period_expires_at`` ("Old Key Valid Until"). csm's rotation: the
    old key works until then, the new one is shown once."""
    _create_account(admin_token)
    old = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "ci"}).json()

    before = time.time()
    rotated = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys/{old['id']}/rotate", {"grace_period_hours": 48})
    assert rotated.status_code == 201, rotated.content
    body = rotated.json()
    assert body["id"] != old["id"] and body["key"] != old["key"] and body["key"].startswith("csm_")
    assert body["description"] == "ci"
    assert body["expires_at"] is None
    grace_end = _epoch(body["grace_period_expires_at"])
    assert before + 48 * 3600 - 5 <= grace_end <= time.time() + 48 * 3600 + 5
    assert cli(old["key"], "GET", f"{SA}/acme/ci-bot").status_code == 403  # still authenticates
    assert cli(body["key"], "GET", f"{SA}/acme/ci-bot").status_code == 403
    assert _last(org, "token.rotated").after["grace_seconds"] == 48 * 3600

    again = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys/{old['id']}/rotate", {})
    assert again.status_code == 400  # not 409: the CLI would retry it
    assert "already rotated" in cli_error(again)


def test_rotate_api_key_defaults_and_limits(admin_token):
    """Without --grace-period-hours the payload is ``{}`` (omitempty) and csm's default grace of 24 hours
    applies; --expires-at sets the new key's expiry; a grace beyond 720 hours is a 400 naming the field."""
    _create_account(admin_token)
    key = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys", {"description": "ci"}).json()
    too_long = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys/{key['id']}/rotate", {"grace_period_hours": 721})
    assert too_long.status_code == 400 and "grace_period_hours" in too_long.json()["error"]["fields"]

    expires = int(time.time()) + 7 * 86400
    rotated = cli(admin_token, "POST", f"{SA}/acme/ci-bot/api-keys/{key['id']}/rotate", {"expires_at": expires})
    assert rotated.status_code == 201
    body = rotated.json()
    assert _epoch(body["expires_at"]) == expires
    assert abs(body["grace_period_expires_at"] - (time.time() + 24 * 3600)) < 60


# --- who may: permissions, other orgs -------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.MEMBER, Role.SNAPSHOTTER, Role.READER])
def test_roles_without_tokens_manage_get_403(org, token_for, admin_token, role):
    """The same permission csm's own service-account endpoints use: ``tokens.manage`` (owners, admins)."""
    _create_account(admin_token)
    token = token_for(org, role)
    for method, path, payload in [("GET", f"{SA}/acme", None),
                                  ("POST", f"{SA}/acme", {"name": "x", "privilege": "reader"}),
                                  ("GET", f"{SA}/acme/ci-bot/api-keys", None),
                                  ("POST", f"{SA}/acme/ci-bot/api-keys", {"description": "x"}),
                                  ("DELETE", f"{SA}/acme/ci-bot", None)]:
        answer = cli(token, method, path, payload)
        assert answer.status_code == 403, (method, path)
        assert "tokens.manage" in cli_error(answer)
    assert ServiceAccount.objects.get(org=org, name="ci-bot").deactivated_at is None


def test_another_orgs_accounts_are_404(org, other_org, token_for, admin_token):
    """A token of another org, or another org's account name in this org's path: 404, nothing revealed."""
    _create_account(admin_token)
    outsider = token_for(other_org, Role.ADMIN, name="globex-admin")
    for method, path in [("GET", f"{SA}/acme"), ("GET", f"{SA}/acme/ci-bot"), ("DELETE", f"{SA}/acme/ci-bot"),
                         ("GET", f"{SA}/acme/ci-bot/api-keys")]:
        answer = cli(outsider, method, path)
        assert answer.status_code == 404, (method, path)
        assert "ci-bot" not in answer.content.decode()
    assert cli(admin_token, "GET", f"{SA}/acme/globex-admin").status_code == 404
    globex_key = ApiToken.objects.get(service_account__name="globex-admin")
    assert cli(admin_token, "GET", f"{SA}/acme/kosli-admin/api-keys/{globex_key.pk}").status_code == 404
    assert cli(admin_token, "DELETE", f"{SA}/acme/kosli-admin/api-keys/{globex_key.pk}").status_code == 404
    assert ApiToken.objects.get(pk=globex_key.pk).revoked_at is None


# --- default org ----------------------------------------------------------------------------------------

def _personal_token(org, user):
    from audit.context import AuditContext
    from tenants.services import create_api_token

    _, plaintext = create_api_token(AuditContext.for_user(user), org, "cli", user=user)
    return plaintext


def test_get_and_update_default_org(org, other_org, owner):
    """cmd/kosli/getDefaultOrg.go ``getDefaultOrgOptions.run``: GET /api/v2/user/default-org, reading
    ``default_org_name`` (string; "" or null prints "(none set)"). cmd/kosli/updateDefaultOrg.go: PUT
    /api/v2/user/{org} with no payload (Go marshals nil: ``null``); only the status is read. The web app
    opens that org after sign-in; the change is audited."""
    token = _personal_token(org, owner)
    none_yet = cli(token, "GET", "/api/v2/user/default-org")
    assert none_yet.status_code == 200
    assert none_yet.json() == {"default_org_name": None}

    updated = cli(token, "PUT", "/api/v2/user/acme")
    assert updated.status_code == 200, updated.content
    assert updated.json() == {"default_org_name": "acme"}
    assert UserSettings.objects.get(user=owner).default_org == org
    event = _last(org, "user.default_org_changed")
    assert event.after == {"default_org": "acme"} and event.before == {"default_org": None}
    assert event.actor_user_id == owner.pk

    got = cli(token, "GET", "/api/v2/user/default-org")
    assert got.json() == {"default_org_name": "acme"}
    assert isinstance(got.json()["default_org_name"], str)


def test_default_org_must_be_the_callers(org, other_org, owner):
    """An org the caller does not belong to is a 404 like any other org's path; a personal token is valid
    in its own org only, so it sets that one (the web page sets any of the person's orgs)."""
    token = _personal_token(org, owner)
    outside = cli(token, "PUT", "/api/v2/user/globex")
    assert outside.status_code == 404
    assert cli(token, "PUT", "/api/v2/user/no-such-org").status_code == 404
    assert default_org(owner) is None


def test_default_org_refuses_service_accounts(org, admin_token):
    """A service-account key has no user: a 400 saying so, for both commands."""
    for method, path in [("GET", "/api/v2/user/default-org"), ("PUT", "/api/v2/user/acme")]:
        answer = cli(admin_token, method, path)
        assert answer.status_code == 400, (method, path)
        assert "personal API token" in cli_error(answer)


def test_default_org_refuses_a_snapshotter_membership(org, member_of):
    """A person whose role in the org has no web pages (snapshotter) cannot make it the org to open: 403
    naming the permission, as every org path answers a role without it."""
    user = member_of(org, Role.SNAPSHOTTER)
    answer = cli(_personal_token(org, user), "PUT", "/api/v2/user/acme")
    assert answer.status_code == 403
    assert "org.view" in cli_error(answer)


def test_default_org_named_default_org(make_org, owner):
    """``kosli update default-org default-org`` PUTs /api/v2/user/default-org: an org of that slug."""
    special = make_org("default-org", owner)
    answer = cli(_personal_token(special, owner), "PUT", "/api/v2/user/default-org")
    assert answer.status_code == 200, answer.content
    assert default_org(owner) == special
