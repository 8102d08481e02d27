"""SSO sign-in against a real OpenID Connect provider (oidc-provider under Node): the full authorization-code
flow with PKCE, state and nonce; just-in-time accounts and memberships; roles from groups; and every refusal
recorded as ``sso.failed`` in the org's trail."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from identity.models import GroupRoleMapping
from tenants.choices import Role
from tenants.models import Membership
from tests.conftest import PASSWORD
from tests.identity.sso_support import (  # noqa: F401 - fixtures
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    configure_sso,
    idp_sign_in,
    idp_url,
    oidc_provider,
    second_oidc_provider,
    sso_settings,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(org, oidc_provider, sso_settings):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])
    GroupRoleMapping.objects.create(org=org, group="csm-admins", role=Role.ADMIN)
    return org


def sso_sign_in(client, email, login=None):
    """Start at /sso/start/ with ``email``, sign in at the IdP as ``login``, come back; the callback response."""
    start = client.get("/sso/start/", {"email": email})
    callback = idp_sign_in(idp_url(start), login or email.split("@")[0])
    return client.get(urlsplit(callback).path + "?" + urlsplit(callback).query), callback


def failures(org):
    return [e.after for e in AuditEvent.objects.filter(org=org, action="sso.failed").order_by("seq")]


def test_start_sends_the_browser_to_the_org_idp_with_pkce_state_and_nonce(client, acme, oidc_provider):  # noqa: F811
    response = client.get("/sso/start/", {"email": "alice@acme.test"})
    assert response.status_code == 200  # a page continuing to the IdP (a form's redirect would break CSP)
    assert b"Continuing to Acme Corp's identity provider" in response.content
    location = urlsplit(idp_url(response))
    assert f"{location.scheme}://{location.netloc}" == oidc_provider.issuer
    query = parse_qs(location.query)
    assert query["client_id"] == ["csm"]
    assert query["redirect_uri"] == ["http://testserver/sso/callback/"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43 and query["state"][0] and query["nonce"][0]
    assert query["login_hint"] == ["alice@acme.test"]


def test_sign_in_creates_account_and_membership_with_role_from_groups(client, acme):
    response, _ = sso_sign_in(client, "alice@acme.test")
    assert response.status_code == 302
    user = get_user_model().objects.get(email="alice@acme.test")
    assert not user.has_usable_password()
    membership = Membership.objects.get(org=acme, user=user)
    assert (membership.role, membership.source) == (Role.ADMIN, "sso")
    assert client.get("/o/acme/").status_code == 200  # signed in, and a member
    signed_in = AuditEvent.objects.get(org=acme, action="user.signed_in", target_label="alice@acme.test")
    assert signed_in.after == {"method": "sso"}
    added = AuditEvent.objects.get(org=acme, action="member.added", target_label="alice@acme.test")
    assert added.after["source"] == "sso" and added.after["role"] == Role.ADMIN


def test_without_a_mapped_group_a_new_member_gets_the_default_role(client, acme):
    response, _ = sso_sign_in(client, "bob@acme.test")
    assert response.status_code == 302
    assert Membership.objects.get(org=acme, user__email="bob@acme.test").role == Role.MEMBER


def test_each_sign_in_updates_the_role_when_a_mapping_applies(client, acme, make_user):
    bob = make_user("bob@acme.test", password=None)  # an account the org manages (SCIM, earlier SSO)
    Membership.objects.create(org=acme, user=bob, role=Role.READER)
    GroupRoleMapping.objects.create(org=acme, group="staff", role=Role.MEMBER)
    response, _ = sso_sign_in(client, "bob@acme.test")
    assert response.status_code == 302
    assert Membership.objects.get(org=acme, user=bob).role == Role.MEMBER
    change = AuditEvent.objects.get(org=acme, action="member.role_changed")
    assert change.before == {"role": "reader"} and change.after["role"] == "member" and change.after["source"] == "sso"


def test_existing_account_the_org_manages_is_signed_in_by_verified_email(client, acme, make_user):
    alice = make_user("alice@acme.test", password=None)
    Membership.objects.create(org=acme, user=alice, role=Role.MEMBER, source="scim")
    response, _ = sso_sign_in(client, "alice@acme.test")
    assert response.status_code == 302 and response["Location"] == "/"
    assert int(client.session["_auth_user_id"]) == alice.pk


def test_existing_password_account_needs_its_password_to_be_linked(client, acme, make_user):
    """A verified email alone never opens an account with a password (tests/identity/test_sso_account_linking.py)."""
    alice = make_user("alice@acme.test")
    Membership.objects.create(org=acme, user=alice, role=Role.MEMBER)
    response, _ = sso_sign_in(client, "alice@acme.test")
    assert response.status_code == 302 and response["Location"] == "/sso/link/"
    assert "_auth_user_id" not in client.session
    assert client.post("/sso/link/", {"password": PASSWORD}).status_code == 302
    assert int(client.session["_auth_user_id"]) == alice.pk


def test_next_is_honoured_after_sign_in(client, acme):
    start = client.get("/sso/start/", {"email": "alice@acme.test", "next": "/o/acme/settings/"})
    callback = idp_sign_in(idp_url(start), "alice")
    response = client.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert response["Location"] == "/o/acme/settings/"


def test_org_start_url_signs_in_through_that_org(client, acme):
    start = client.get("/sso/acme/start/")
    assert start.status_code == 302
    callback = idp_sign_in(idp_url(start), "bob")
    response = client.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert response.status_code == 302
    assert Membership.objects.filter(org=acme, user__email="bob@acme.test").exists()


def test_unknown_domain_is_told_to_use_a_password(client, acme):
    response = client.get("/sso/start/", {"email": "someone@nowhere.test"})
    assert response.status_code == 400
    assert b"No organization signs in with SSO for nowhere.test" in response.content


def test_unverified_domain_does_not_route(client, org, oidc_provider, sso_settings):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, domains=["acme.test"])
    assert client.get("/sso/start/", {"email": "alice@acme.test"}).status_code == 400


def test_unverified_email_is_refused_and_audited(client, acme):
    response, _ = sso_sign_in(client, "eve@acme.test")
    assert response.status_code == 403
    assert b"has not verified eve@acme.test" in response.content
    assert failures(acme)[-1]["reason"] == "email_unverified"
    assert not get_user_model().objects.filter(email="eve@acme.test").exists()
    assert "_auth_user_id" not in client.session


def test_address_of_a_domain_the_org_has_not_verified_is_refused(client, acme):
    """The IdP may assert any address; only the org's verified domains create members (carol is @globex)."""
    start = client.get("/sso/acme/start/")
    callback = idp_sign_in(idp_url(start), "carol")
    response = client.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert response.status_code == 403
    assert failures(acme)[-1]["reason"] == "domain_not_verified"
    assert not Membership.objects.filter(org=acme, user__email="carol@globex.test").exists()


def test_tampered_state_is_refused_and_audited(client, acme):
    start = client.get("/sso/start/", {"email": "alice@acme.test"})
    callback = idp_sign_in(idp_url(start), "alice")
    query = parse_qs(urlsplit(callback).query)
    response = client.get("/sso/callback/", {"code": query["code"][0], "state": "forged-state"})
    assert response.status_code == 400
    assert b"state mismatch" in response.content
    assert failures(acme)[-1]["reason"] == "state_mismatch"
    assert "_auth_user_id" not in client.session


def test_replayed_callback_is_refused_and_audited(client, acme):
    response, callback = sso_sign_in(client, "alice@acme.test")
    assert response.status_code == 302
    replay = client.get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert replay.status_code == 400
    assert failures(acme)[-1]["reason"] == "replayed"


def test_callback_in_another_browser_is_refused(client, acme, django_user_model):
    from django.test import Client

    start = client.get("/sso/start/", {"email": "alice@acme.test"})
    callback = idp_sign_in(idp_url(start), "alice")
    response = Client().get(urlsplit(callback).path + "?" + urlsplit(callback).query)
    assert response.status_code == 400
    assert b"No SSO sign-in is in progress" in response.content


def test_wrong_client_credentials_fail_at_the_token_endpoint(client, org, oidc_provider, sso_settings):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, client_secret="not-the-secret", verified=["acme.test"])
    response, _ = sso_sign_in(client, "alice@acme.test")
    assert response.status_code == 400
    assert failures(org)[-1]["reason"] == "token_exchange_failed"


def test_suspended_membership_is_refused_with_a_clear_message(client, acme, make_user):
    from django.utils import timezone

    alice = make_user("alice@acme.test")
    Membership.objects.create(org=acme, user=alice, role=Role.MEMBER, suspended_at=timezone.now())
    response, _ = sso_sign_in(client, "alice@acme.test")
    assert response.status_code == 403
    assert b"Your membership in Acme Corp is suspended" in response.content
    assert failures(acme)[-1]["reason"] == "membership_suspended"


def test_disabled_sso_no_longer_routes(client, acme):
    from identity.models import SsoProvider

    SsoProvider.objects.filter(org=acme).update(enabled=False)
    assert client.get("/sso/start/", {"email": "alice@acme.test"}).status_code == 400
    assert client.get("/sso/acme/start/").status_code == 404


def test_idp_on_a_private_address_is_refused_unless_the_operator_allows_it(client, acme, settings):
    from django.core.cache import cache

    cache.clear()  # the discovery document cached when SSO was configured
    settings.CSM_SSO_ALLOW_PRIVATE_ISSUERS = False
    response = client.get("/sso/start/", {"email": "alice@acme.test"})
    assert response.status_code == 502
    assert b"CSM_SSO_ALLOW_PRIVATE_ISSUERS" in response.content
    assert failures(acme)[-1]["reason"] == "idp_refused"


def test_a_changed_encryption_key_makes_the_stored_secret_unreadable(client, acme, settings):
    settings.CSM_SECRET_ENCRYPTION_KEY = "another-key"
    response, _ = sso_sign_in(client, "alice@acme.test")
    assert response.status_code == 500
    assert b"an admin must enter it again" in response.content
    assert failures(acme)[-1]["reason"] == "secret_unreadable"
