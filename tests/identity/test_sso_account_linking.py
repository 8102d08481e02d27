"""SSO never takes over an existing account by email (the "link by subject" model), against real OpenID
Connect providers (oidc-provider under Node): an org whose own IdP "verified" a domain it does not own signs
in as a victim's address and gets nothing but a page asking for the account's password; the account's owner
links it with that password and later sign-ins go straight through by the IdP's subject; an account this org
manages (SCIM, earlier JIT) is linked directly; an account another org manages is refused."""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from audit.context import AuditContext
from audit.models import AuditEvent
from identity import sso
from identity.models import SsoIdentity
from tenants.choices import Role
from tenants.models import Membership
from tests.conftest import PASSWORD
from tests.identity.scim_support import ScimClient, fixtures, scim_token
from tests.identity.sso_support import (  # noqa: F401 - fixtures
    configure_sso,
    idp_sign_in,
    idp_url,
    oidc_provider,
    second_oidc_provider,
    sso_settings,
)
from tests.identity.twofactor_support import enrol_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def victim(org, make_user):
    """Alice: a password account, a member of Acme (which has no SSO)."""
    alice = make_user("alice@acme.test")
    Membership.objects.create(org=org, user=alice, role=Role.ADMIN)
    return alice


@pytest.fixture
def evil(make_org, make_user, second_oidc_provider, sso_settings):  # noqa: F811
    """Another org that "verified" acme.test through its own IdP (nobody had claimed the domain)."""
    evil = make_org("evil", make_user("mallory@evil.test"), "Evil Inc")
    configure_sso(evil, second_oidc_provider.issuer, verified=["acme.test"])
    return evil


def sso_callback(client, org_slug: str, login: str, next_url: str = ""):
    """Sign in through ``org_slug``'s IdP as ``login`` (the provider's ``sub`` is the login); the callback's
    response."""
    start = client.get(f"/sso/{org_slug}/start/", {"next": next_url} if next_url else {})
    callback = urlsplit(idp_sign_in(idp_url(start), login))
    return client.get(f"{callback.path}?{callback.query}")


def signed_in_as(client):
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id) if user_id else None


def events(org, action):
    return list(AuditEvent.objects.filter(org=org, action=action).order_by("seq"))


def test_another_orgs_idp_cannot_take_over_an_existing_account(client, org, victim, evil):
    response = sso_callback(client, "evil", "alice")
    assert response.status_code == 302 and response["Location"] == "/sso/link/"
    assert signed_in_as(client) is None
    page = client.get("/sso/link/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "An account with this address already exists" in text
    assert "Confirm it is yours with its csm password to use Evil Inc's single sign-on" in text
    # The victim's org stays closed, and nothing was linked or joined.
    acme_page = client.get("/o/acme/")
    assert acme_page.status_code == 302 and acme_page["Location"].startswith("/login/")
    assert not SsoIdentity.objects.exists()
    assert not Membership.objects.filter(org=evil, user=victim).exists()
    assert not events(org, "user.signed_in") and not events(evil, "user.signed_in")


def test_a_member_of_the_idps_org_and_another_org_is_not_signed_in_by_email(client, org, victim, evil):
    Membership.objects.create(org=evil, user=victim, role=Role.MEMBER)
    response = sso_callback(client, "evil", "alice")
    assert response["Location"] == "/sso/link/" and signed_in_as(client) is None
    assert client.get("/o/acme/").status_code == 302


def test_linking_with_the_password_signs_in_and_later_sign_ins_go_by_subject(client, org, victim, evil):
    sso_callback(client, "evil", "alice", next_url="/o/evil/")
    response = client.post("/sso/link/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/o/evil/"
    assert signed_in_as(client) == victim
    link = SsoIdentity.objects.get(org=evil)
    assert (link.user, link.subject, link.email) == (victim, "alice", "alice@acme.test")
    linked = events(evil, "sso.account_linked")[-1]
    assert linked.after == {"subject": "alice", "email": "alice@acme.test", "via": "password"}
    assert Membership.objects.get(org=evil, user=victim).source == "sso"
    assert events(evil, "user.signed_in")[-1].after == {"method": "sso"}
    assert client.get("/sso/link/").status_code == 400  # single use

    again = Client()
    response = sso_callback(again, "evil", "alice")
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(again) == victim
    link.refresh_from_db()
    assert link.last_used_at is not None
    assert len(events(evil, "sso.account_linked")) == 1


def test_a_linked_subject_is_the_same_person_whatever_address_the_idp_sends(client, org, victim, evil):
    """The link, not the address, decides: bob's IdP account (sub "bob", bob@acme.test) was linked to Alice."""
    SsoIdentity.objects.create(org=evil, user=victim, subject="bob", email="alice@acme.test")
    response = sso_callback(client, "evil", "bob")
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(client) == victim


def test_a_wrong_password_is_refused_audited_and_rate_limited(client, org, victim, evil, settings):
    settings.CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT = 2
    sso_callback(client, "evil", "alice")
    response = client.post("/sso/link/", {"password": "guess-1"})
    assert response.status_code == 400
    assert "That is not the password of this csm account." in response.content.decode()
    assert signed_in_as(client) is None and not SsoIdentity.objects.exists()
    failed = events(evil, "sso.failed")[-1].after
    assert (failed["reason"], failed["email"]) == ("link_password", "alice@acme.test")
    assert events(org, "user.sign_in_failed")[-1].after == {"reason": "sso_link_password"}  # the victim's org sees it
    assert client.post("/sso/link/", {"password": "guess-2"}).status_code == 400
    limited = client.post("/sso/link/", {"password": PASSWORD})  # even the right one, once over the limit
    assert limited.status_code == 429 and "Too many failed sign-in attempts" in limited.content.decode()
    assert signed_in_as(client) is None and not SsoIdentity.objects.exists()


def test_an_empty_password_is_a_form_error(client, victim, evil):
    sso_callback(client, "evil", "alice")
    response = client.post("/sso/link/", {"password": ""})
    assert response.status_code == 400 and "This field is required." in response.content.decode()


def test_cancel_drops_the_pending_link(client, victim, evil):
    sso_callback(client, "evil", "alice")
    response = client.post("/sso/link/", {"cancel": "1"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/sso/link/").status_code == 400
    assert client.post("/sso/link/", {"password": PASSWORD}).status_code == 400
    assert signed_in_as(client) is None and not SsoIdentity.objects.exists()


def test_a_pending_link_expires_after_ten_minutes(client, victim, evil):
    sso_callback(client, "evil", "alice")
    session = client.session
    assert session[sso.LINK_KEY]["expires"] - timezone.now().timestamp() == pytest.approx(600, abs=30)
    session[sso.LINK_KEY]["expires"] = int(timezone.now().timestamp()) - 1
    session.save()
    response = client.post("/sso/link/", {"password": PASSWORD})
    assert response.status_code == 400 and b"expired after 10 minutes" in response.content
    assert signed_in_as(client) is None and not SsoIdentity.objects.exists()


def test_linking_an_account_with_a_second_factor_asks_for_it(client, victim, evil):
    enrol_totp(victim)
    sso_callback(client, "evil", "alice")
    response = client.post("/sso/link/", {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/login/two-factor/"
    assert signed_in_as(client) is None
    assert SsoIdentity.objects.filter(org=evil, user=victim).exists()
    assert sso_callback(Client(), "evil", "alice")["Location"] == "/login/two-factor/"  # by subject, still two-factor


def test_a_scim_provisioned_account_signs_in_directly(client, org, oidc_provider, sso_settings):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])
    okta = ScimClient(scim_token(org, "Okta"))
    create = dict(fixtures("okta")["02_create_user"]["body"], userName="bob@acme.test", externalId="00u-bob",
                  emails=[{"primary": True, "value": "bob@acme.test", "type": "work"}])
    assert okta.post("/Users", create).status_code == 201
    bob = get_user_model().objects.get(email="bob@acme.test")
    assert not bob.has_usable_password()

    response = sso_callback(client, "acme", "bob")
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_as(client) == bob
    assert events(org, "sso.account_linked")[-1].after == {"subject": "bob", "email": "bob@acme.test",
                                                            "via": "managed_account"}


def test_a_new_person_gets_an_account_and_a_link(client, org, oidc_provider, sso_settings):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])
    assert sso_callback(client, "acme", "bob")["Location"] == "/"
    bob = get_user_model().objects.get(email="bob@acme.test")
    assert SsoIdentity.objects.get(org=org).user == bob
    assert events(org, "sso.account_linked")[-1].after["via"] == "new_account"


def test_an_account_another_org_provisioned_is_refused(client, org, evil, make_user):
    """No password, and a membership in Acme (SCIM): Evil's IdP cannot sign it in, even with a password form."""
    alice = make_user("alice@acme.test", password=None)
    Membership.objects.create(org=org, user=alice, role=Role.MEMBER, source="scim")
    response = sso_callback(client, "evil", "alice")
    assert response.status_code == 403
    assert b"managed by another organization" in response.content
    assert events(evil, "sso.failed")[-1].after["reason"] == "account_managed_elsewhere"
    assert signed_in_as(client) is None and client.get("/sso/link/").status_code == 400


def test_an_account_of_another_orgs_sso_is_refused(client, org, evil, make_user):
    """Created by Acme's SSO (linked there), no memberships left anywhere: still Acme's, not Evil's."""
    alice = make_user("alice@acme.test", password=None)
    SsoIdentity.objects.create(org=org, user=alice, subject="alice-at-acme", email="alice@acme.test")
    response = sso_callback(client, "evil", "alice")
    assert response.status_code == 403
    assert events(evil, "sso.failed")[-1].after["reason"] == "account_managed_elsewhere"
    assert signed_in_as(client) is None


def test_an_account_another_orgs_scim_provisioned_stays_its_own_without_a_membership(client, org, evil):
    okta = ScimClient(scim_token(org, "Okta"))
    create = dict(fixtures("okta")["02_create_user"]["body"], userName="alice@acme.test", externalId="00u-alice",
                  emails=[{"primary": True, "value": "alice@acme.test", "type": "work"}])
    assert okta.post("/Users", create).status_code == 201
    Membership.objects.filter(org=org, user__email="alice@acme.test").delete()
    response = sso_callback(client, "evil", "alice")
    assert response.status_code == 403
    assert events(evil, "sso.failed")[-1].after["reason"] == "account_managed_elsewhere"


def test_a_subject_linked_meanwhile_to_another_account_is_not_linked_again(client, victim, evil, make_user):
    sso_callback(client, "evil", "alice")
    SsoIdentity.objects.create(org=evil, user=make_user("someone@evil.test"), subject="alice",
                               email="someone@evil.test")
    response = client.post("/sso/link/", {"password": PASSWORD})
    assert response.status_code == 409 and b"already linked to another csm account" in response.content
    assert signed_in_as(client) is None and not SsoIdentity.objects.filter(user=victim).exists()


def test_a_new_issuer_removes_the_orgs_links(org, victim, evil, oidc_provider):  # noqa: F811
    SsoIdentity.objects.create(org=evil, user=victim, subject="alice", email="alice@acme.test")
    sso.save_provider(AuditContext.system("test"), evil, issuer=oidc_provider.issuer, client_id="csm",
                      client_secret=None, enabled=True, default_role=Role.MEMBER, groups_claim="groups")
    assert not SsoIdentity.objects.filter(org=evil).exists()
    assert events(evil, "sso.configured")[-1].after["identities_unlinked"] == 1


def test_a_member_of_an_org_requiring_sso_moves_to_sso_through_the_link_page(client, org, oidc_provider,  # noqa: F811
                                                                            sso_settings, member_of):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])
    sso.set_require_sso(AuditContext.system("test"), org, True)
    bob = member_of(org, Role.MEMBER, "bob@acme.test")
    assert client.post("/login/", {"username": "bob@acme.test", "password": PASSWORD}).status_code == 403
    assert sso_callback(client, "acme", "bob")["Location"] == "/sso/link/"
    assert client.post("/sso/link/", {"password": PASSWORD}).status_code == 302
    assert signed_in_as(client) == bob
    assert client.get("/o/acme/").status_code == 200
    assert Client().post("/login/", {"username": "bob@acme.test", "password": PASSWORD}).status_code == 403
