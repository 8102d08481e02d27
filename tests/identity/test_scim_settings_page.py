"""The org's SCIM settings page: who may open it, a token shown once that then works at /scim/v2/, revoking
it, the default role — each change audited."""

import re

import pytest
from django.conf import settings

from audit.models import AuditEvent
from identity.models import ScimSettings, ScimToken
from tenants.choices import Role
from tests.identity.scim_support import ScimClient, scim_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner, org):
    client.force_login(owner)
    return client


def _url(org, rest=""):
    return f"/o/{org.slug}/settings/scim/{rest}"


@pytest.mark.parametrize(("role", "status"), [(Role.ADMIN, 200), (Role.MEMBER, 403), (Role.READER, 403)])
def test_only_member_managers_open_the_page(client, org, member_of, role, status):
    client.force_login(member_of(org, role))
    assert client.get(_url(org)).status_code == status


def test_another_orgs_admin_gets_404(client, org, other_org, member_of):
    client.force_login(member_of(other_org, Role.ADMIN))
    assert client.get(_url(org)).status_code == 404
    assert client.post(_url(org, "tokens/"), {"name": "x"}).status_code == 404
    assert not ScimToken.objects.exists()


def test_a_token_is_shown_once_works_and_stops_when_revoked(owner_client, org):
    page = owner_client.get(_url(org)).content.decode()
    assert f"{settings.CSM_BASE_URL}/scim/v2/</code>" in page  # the URL to paste into the IdP
    answer = owner_client.post(_url(org, "tokens/"), {"name": "Okta"}, follow=True)
    shown = re.search(r"csmscim_[0-9A-Za-z]{40}", answer.content.decode())
    assert shown is not None
    plaintext = shown.group(0)
    assert plaintext not in owner_client.get(_url(org)).content.decode()  # once only
    token = ScimToken.objects.get(org=org)
    assert token.token_hash != plaintext and plaintext.startswith(token.prefix)
    assert ScimClient(plaintext).get("/Users").status_code == 200
    assert AuditEvent.objects.filter(org=org, action="scim.token_created").exists()

    page = owner_client.get(_url(org)).content.decode()
    assert token.prefix in page and "just now" in page  # last used, from the request above
    owner_client.post(_url(org, f"tokens/{token.pk}/revoke/"))
    assert ScimClient(plaintext).get("/Users").status_code == 401
    assert AuditEvent.objects.filter(org=org, action="scim.token_revoked").exists()


def test_revoking_another_orgs_token_is_404(owner_client, org, other_org):
    plaintext = scim_token(other_org)
    token = ScimToken.objects.get(org=other_org)
    assert owner_client.post(_url(org, f"tokens/{token.pk}/revoke/")).status_code == 404
    assert ScimClient(plaintext).get("/Users").status_code == 200


def test_default_role(owner_client, org):
    owner_client.post(_url(org, "default-role/"), {"default_role": Role.READER})
    assert ScimSettings.of(org).default_role == Role.READER
    event = AuditEvent.objects.get(org=org, action="scim.settings_changed")
    assert (event.before, event.after) == ({"default_role": "member"}, {"default_role": "reader"})
    owner_client.post(_url(org, "default-role/"), {"default_role": Role.OWNER})
    assert ScimSettings.of(org).default_role == Role.READER
