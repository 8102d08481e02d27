"""The org's SSO settings page (/o/<org>/settings/sso/): the IdP configuration with a write-only, encrypted
client secret; email domains verified by an admin's test sign-in at the real IdP; the group→role editor; and
the owner-only "SSO required" switch. Every change is audited."""

from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection

from audit.models import AuditEvent
from csm.lib import secretbox
from identity.models import GroupRoleMapping, OrgIdentitySettings, SsoDomain, SsoProvider
from tenants.choices import Role
from tests.identity.sso_support import (  # noqa: F401 - fixtures
    CLIENT_ID,
    CLIENT_SECRET,
    configure_sso,
    idp_sign_in,
    idp_url,
    oidc_provider,
    sso_settings,
)

pytestmark = pytest.mark.django_db
URL = "/o/acme/settings/sso/"


@pytest.fixture
def owner_client(client, owner, org, sso_settings):  # noqa: F811
    client.force_login(owner)
    return client


def save(client, issuer, secret=CLIENT_SECRET, **extra):
    data = {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": secret, "default_role": "member",
            "groups_claim": "groups", "enabled": "on", **extra}
    return client.post(URL, data)


def actions(org, prefix="sso."):
    return [e.action for e in AuditEvent.objects.filter(org=org, action__startswith=prefix).order_by("seq")]


def last_event(org, action):
    return AuditEvent.objects.filter(org=org, action=action).order_by("seq").last()


def test_page_is_for_admins_and_owners_only(client, org, member_of, other_org, sso_settings):  # noqa: F811
    client.force_login(member_of(org, Role.MEMBER))
    assert client.get(URL).status_code == 403
    client.force_login(member_of(org, Role.ADMIN))
    assert client.get(URL).status_code == 200
    assert client.get("/o/globex/settings/sso/").status_code == 404


def test_settings_navigation_links_the_page(owner_client):
    assert b'href="/o/acme/settings/sso/"' in owner_client.get("/o/acme/settings/").content


def test_client_secret_is_stored_encrypted_and_never_shown(owner_client, org, oidc_provider):  # noqa: F811
    assert save(owner_client, oidc_provider.issuer).status_code == 302
    provider = SsoProvider.objects.get(org=org)
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret_sealed FROM identity_ssoprovider WHERE id = %s", [provider.pk])
        stored = cursor.fetchone()[0]
    assert CLIENT_SECRET not in stored
    assert secretbox.unseal(stored, django_settings.CSM_SECRET_ENCRYPTION_KEY) == CLIENT_SECRET
    page = owner_client.get(URL).content.decode()
    assert CLIENT_SECRET not in page and "Leave empty to keep it" in page
    event = AuditEvent.objects.get(org=org, action="sso.configured")
    assert CLIENT_SECRET not in str(event.after) and event.after["client_secret_changed"] is True


def test_empty_secret_keeps_the_stored_one(owner_client, org, oidc_provider):  # noqa: F811
    save(owner_client, oidc_provider.issuer)
    assert save(owner_client, oidc_provider.issuer, secret="", default_role="reader").status_code == 302
    provider = SsoProvider.objects.get(org=org)
    assert provider.client_secret() == CLIENT_SECRET and provider.default_role == Role.READER


def test_secret_is_required_the_first_time(owner_client, oidc_provider):  # noqa: F811
    response = save(owner_client, oidc_provider.issuer, secret="")
    assert response.status_code == 400 and b"Enter the client secret." in response.content


def test_bad_issuer_is_a_form_error_on_the_issuer(owner_client):
    response = save(owner_client, "http://127.0.0.1:9/")
    assert response.status_code == 400
    assert b"could not be fetched" in response.content
    assert not SsoProvider.objects.exists()


def test_domains_are_listed_unverified_and_claimed_by_one_org(owner_client, org, other_org, oidc_provider):  # noqa: F811
    configure_sso(other_org, oidc_provider.issuer, verified=["globex.test"])
    owner_client.post(URL + "domains/", {"domain": "Acme.TEST"})
    assert SsoDomain.objects.get(org=org).domain == "acme.test"
    assert SsoDomain.objects.get(org=org).verified_at is None
    response = owner_client.post(URL + "domains/", {"domain": "globex.test"}, follow=True)
    assert b"globex.test is already verified by another organization." in response.content
    assert not SsoDomain.objects.filter(org=org, domain="globex.test").exists()
    owner_client.post(URL + "domains/", {"domain": "not a domain"})
    assert SsoDomain.objects.filter(org=org).count() == 1
    assert actions(org) == ["sso.domain_added"]


def test_test_sign_in_verifies_the_domain(owner_client, org, oidc_provider):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, domains=["acme.test"])
    start = owner_client.post(URL + "test/")
    callback = idp_sign_in(idp_url(start), "admin")
    response = owner_client.get(urlsplit(callback).path + "?" + urlsplit(callback).query, follow=True)
    assert b"acme.test is verified" in response.content
    domain = SsoDomain.objects.get(org=org, domain="acme.test")
    assert domain.verified_at is not None and domain.verified_by.email == "owner@example.com"
    assert AuditEvent.objects.get(org=org, action="sso.domain_verified").after == {"email": "admin@acme.test"}


def test_test_sign_in_with_an_unverified_address_verifies_nothing(owner_client, org, oidc_provider):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, domains=["acme.test"])
    callback = idp_sign_in(idp_url(owner_client.post(URL + "test/")), "eve")
    response = owner_client.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert response.status_code == 403
    assert SsoDomain.objects.get(org=org).verified_at is None
    assert last_event(org, "sso.failed").after["reason"] == "email_unverified"


def test_test_sign_in_cannot_take_a_domain_another_org_verified(owner_client, org, other_org, oidc_provider):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, domains=["acme.test"])
    configure_sso(other_org, oidc_provider.issuer, verified=["acme.test"])
    callback = idp_sign_in(idp_url(owner_client.post(URL + "test/")), "admin")
    response = owner_client.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert response.status_code == 403
    assert b"already verified by another organization" in response.content
    assert SsoDomain.objects.get(org=org).verified_at is None


def test_changing_the_issuer_unverifies_the_domains(owner_client, org, oidc_provider):  # noqa: F811
    """Domains were proven through the old IdP; the new one must prove them again."""
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])
    SsoProvider.objects.filter(org=org).update(issuer=oidc_provider.issuer + "/old")
    save(owner_client, oidc_provider.issuer, secret="")
    assert SsoDomain.objects.get(org=org).verified_at is None
    assert last_event(org, "sso.configured").after["domains_unverified"] == ["acme.test"]


def test_group_role_editor(owner_client, org, member_of, client):
    owner_client.post(URL + "groups/", {"group": "csm-admins", "role": "admin"})
    owner_client.post(URL + "groups/", {"group": "csm-admins", "role": "member"})
    mapping = GroupRoleMapping.objects.get(org=org)
    assert (mapping.group, mapping.role) == ("csm-admins", "member")
    assert b"csm-admins" in owner_client.get(URL).content
    owner_client.post(URL + f"groups/{mapping.pk}/remove/")
    assert not GroupRoleMapping.objects.exists()
    assert actions(org) == ["sso.group_mapping_set", "sso.group_mapping_set", "sso.group_mapping_removed"]


def test_only_owners_map_a_group_to_owner(client, org, member_of, sso_settings):  # noqa: F811
    client.force_login(member_of(org, Role.ADMIN))
    response = client.post(URL + "groups/", {"group": "root", "role": "owner"}, follow=True)
    assert b"Only owners can map a group to the owner role." in response.content
    assert not GroupRoleMapping.objects.exists()


def test_another_orgs_mapping_is_not_found(owner_client, other_org):
    mapping = GroupRoleMapping.objects.create(org=other_org, group="x", role="member")
    assert owner_client.post(URL + f"groups/{mapping.pk}/remove/").status_code == 404
    assert GroupRoleMapping.objects.filter(pk=mapping.pk).exists()


def test_require_sso_is_owner_only_and_needs_a_verified_domain(owner_client, client, org, member_of,
                                                               oidc_provider):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, domains=["acme.test"])
    response = owner_client.post(URL + "require/", {"require_sso": "on"}, follow=True)
    assert b"verify at least one email domain" in response.content
    assert not OrgIdentitySettings.of(org).require_sso
    SsoDomain.objects.filter(org=org).update(verified_at="2026-01-01T00:00Z")
    owner_client.post(URL + "require/", {"require_sso": "on"})
    assert OrgIdentitySettings.of(org).require_sso
    event = AuditEvent.objects.get(org=org, action="identity.settings_changed")
    assert (event.before, event.after) == ({"require_sso": False}, {"require_sso": True})
    admin = member_of(org, Role.ADMIN)
    owner_client.force_login(admin)
    assert owner_client.post(URL + "require/", {}).status_code == 403
    assert OrgIdentitySettings.of(org).require_sso
