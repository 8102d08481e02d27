""""SSO required": a member's password sign-in on /login/ is refused with the org's name and its SSO path;
owners keep a password as the audited recovery path (``sso.recovery_sign_in``); a person in several orgs is
refused when any org where they are not an owner requires SSO."""

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from identity.models import OrgIdentitySettings, SsoProvider
from tenants.choices import Role
from tenants.models import Membership
from tests.conftest import PASSWORD
from tests.identity.sso_support import configure_sso, oidc_provider, sso_settings  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_requires_sso(org, oidc_provider, sso_settings):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])
    OrgIdentitySettings.objects.create(org=org, require_sso=True)
    return org


def password_sign_in(client, email):
    return client.post("/login/", {"username": email, "password": PASSWORD})


def test_member_password_sign_in_is_refused_naming_the_org_and_sso(client, acme_requires_sso, member_of):
    member_of(acme_requires_sso, Role.MEMBER, "bob@acme.test")
    response = password_sign_in(client, "bob@acme.test")
    assert response.status_code == 403
    text = response.content.decode()
    assert "Acme Corp requires single sign-on" in text and "/sso/acme/start/" in text
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.get(org=acme_requires_sso, action="user.sign_in_failed")
    assert failed.after == {"reason": "sso_required"}


def test_owner_keeps_a_password_and_it_is_audited(client, acme_requires_sso, owner):
    response = password_sign_in(client, "owner@example.com")
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == owner.pk
    recovery = AuditEvent.objects.get(org=acme_requires_sso, action="sso.recovery_sign_in")
    assert recovery.target_label == "owner@example.com" and recovery.after == {"method": "password"}


def test_wrong_password_of_an_owner_is_no_recovery_sign_in(client, acme_requires_sso):
    response = client.post("/login/", {"username": "owner@example.com", "password": "wrong"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="sso.recovery_sign_in").exists()


def test_member_of_two_orgs_one_requiring_sso_is_refused(client, acme_requires_sso, make_org, member_of):
    """Their password would open the SSO org too; they sign in through its IdP, which opens both."""
    bob = member_of(acme_requires_sso, Role.MEMBER, "bob@acme.test")
    make_org("side", bob, "Side Project")
    assert password_sign_in(client, "bob@acme.test").status_code == 403


def test_owner_of_the_sso_org_who_is_member_elsewhere_uses_the_recovery_path(client, acme_requires_sso, owner,
                                                                             other_org):
    Membership.objects.create(org=other_org, user=owner, role=Role.MEMBER)
    assert password_sign_in(client, "owner@example.com").status_code == 302
    assert AuditEvent.objects.filter(org=acme_requires_sso, action="sso.recovery_sign_in").count() == 1
    assert not AuditEvent.objects.filter(org=other_org, action="sso.recovery_sign_in").exists()


def test_orgs_without_sso_required_are_not_affected(client, org, member_of, oidc_provider, sso_settings):  # noqa: F811
    configure_sso(org, oidc_provider.issuer, verified=["acme.test"])  # SSO offered, not required
    member_of(org, Role.MEMBER, "bob@acme.test")
    assert password_sign_in(client, "bob@acme.test").status_code == 302


def test_disabled_provider_lifts_the_requirement(client, acme_requires_sso, member_of):
    """With the IdP switched off nobody could sign in at all; passwords work again."""
    member_of(acme_requires_sso, Role.MEMBER, "bob@acme.test")
    SsoProvider.objects.filter(org=acme_requires_sso).update(enabled=False)
    assert password_sign_in(client, "bob@acme.test").status_code == 302


def test_suspended_membership_does_not_count(client, acme_requires_sso, make_user, make_org):
    bob = make_user("bob@acme.test")
    Membership.objects.create(org=acme_requires_sso, user=bob, role=Role.MEMBER, suspended_at=timezone.now())
    make_org("side", bob, "Side Project")
    assert password_sign_in(client, "bob@acme.test").status_code == 302
