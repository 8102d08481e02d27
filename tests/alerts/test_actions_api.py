"""Actions API: create (secret shown once), validation naming the field, roles, other orgs."""

import pytest

from alerts.models import Action
from audit.models import AuditEvent
from tenants.choices import Role
from tests.policies.helpers import make_env

pytestmark = pytest.mark.django_db

URL = "/api/v2/orgs/acme/actions"


def body(receiver_url="http://127.0.0.1:9/hook", **extra):
    data = {"name": "ops", "type": "webhook", "url": receiver_url, "environments": ["prod"],
            "triggers": ["ON_STARTED_ARTIFACT", "ON_NON_COMPLIANT_ENV"]}
    data.update(extra)
    return data


def test_create_webhook_shows_secret_once_and_stores_it_encrypted(org, owner_api):
    make_env(org)
    answer = owner_api.post(URL, body(), format="json")
    assert answer.status_code == 201, answer.json()
    data = answer.json()
    assert data["secret"].startswith("whsec_") and data["triggers"] == ["ON_STARTED_ARTIFACT", "ON_NON_COMPLIANT_ENV"]
    action = Action.objects.get(pk=data["id"])
    assert data["secret"] not in action.secret_encrypted
    read = owner_api.get(f"{URL}/{data['id']}").json()
    assert "secret" not in read and "secret_encrypted" not in read
    assert "secret" not in owner_api.get(URL).json()[0]
    assert AuditEvent.objects.filter(org=org, action="action.created").exists()


def test_email_and_slack_actions_have_no_secret(org, owner_api):
    make_env(org)
    email = owner_api.post(URL, body(name="mail", type="email", url="", email="ops@example.com"), format="json")
    assert email.status_code == 201 and email.json()["secret"] is None
    slack = owner_api.post(URL, body(name="slack", type="slack"), format="json")
    assert slack.status_code == 201 and slack.json()["secret"] is None


@pytest.mark.parametrize("change, field", [
    ({"triggers": ["ON_SOMETHING"]}, "triggers[0]"),
    ({"triggers": []}, "triggers"),
    ({"environments": ["prod", "nope"]}, "environments[1]"),
    ({"url": ""}, "url"),
    ({"type": "email", "email": ""}, "email"),
    ({"type": "pager"}, "type"),
    ({"url": "ftp://example.com/x"}, "url"),
])
def test_invalid_input_names_the_field(org, owner_api, change, field):
    make_env(org)
    answer = owner_api.post(URL, body(**change), format="json")
    assert answer.status_code == 400
    assert field in answer.json()["error"]["fields"], answer.json()


def test_duplicate_name_is_a_conflict(org, owner_api):
    make_env(org)
    assert owner_api.post(URL, body(), format="json").status_code == 201
    assert owner_api.post(URL, body(), format="json").status_code == 409


def test_update_and_delete(org, owner_api):
    make_env(org)
    created = owner_api.post(URL, body(), format="json").json()
    patched = owner_api.patch(f"{URL}/{created['id']}", {"triggers": ["ON_EXITED_ARTIFACT"], "enabled": False},
                              format="json")
    assert patched.status_code == 200 and patched.json()["triggers"] == ["ON_EXITED_ARTIFACT"]
    assert patched.json()["enabled"] is False
    assert owner_api.delete(f"{URL}/{created['id']}").status_code == 204
    assert owner_api.get(f"{URL}/{created['id']}").status_code == 404
    assert owner_api.post(URL, body(), format="json").status_code == 201  # the name is free again
    actions = set(AuditEvent.objects.filter(org=org).values_list("action", flat=True))
    assert {"action.created", "action.updated", "action.deleted"} <= actions


def test_roles(org, api, member_of, token_for):
    make_env(org)
    member = api(user=member_of(org, Role.MEMBER))
    assert member.get(URL).status_code == 200
    denied = member.post(URL, body(), format="json")
    assert denied.status_code == 403 and "actions.manage" in denied.json()["error"]["message"]
    assert api(user=member_of(org, Role.READER)).get(URL).status_code == 403
    assert api(token=token_for(org, Role.SNAPSHOTTER)).get(URL).status_code == 403
    assert api(token=token_for(org, Role.ADMIN)).post(URL, body(), format="json").status_code == 201


def test_other_orgs_actions_are_404(org, other_org, owner_api, api):
    make_env(org)
    created = owner_api.post(URL, body(), format="json").json()
    globex = api(user=other_org.memberships.first().user)
    assert globex.get(f"{URL}/{created['id']}").status_code == 404
    assert globex.get(f"/api/v2/orgs/globex/actions/{created['id']}").status_code == 404
    assert globex.delete(f"/api/v2/orgs/globex/actions/{created['id']}").status_code == 404
    assert globex.post(f"/api/v2/orgs/globex/actions/{created['id']}/test").status_code == 404
    assert Action.objects.filter(pk=created["id"], deleted_at=None).exists()
