"""Invitations: single use, expiry, wrong email, owner rules (service level)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.context import AuditContext
from csm.errors import ServiceError
from tenants.choices import Role
from tenants.models import Invitation, Membership
from tenants.services import accept_invitation, invite_member, revoke_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite(org, owner):
    def make(email="guest@example.com", role=Role.MEMBER):
        return invite_member(AuditContext.for_user(owner), org, email, role, actor_role=Role.OWNER, invited_by=owner)

    return make


def test_accepting_adds_the_membership_once(invite, make_user, org):
    invitation, secret = invite()
    guest = make_user("Guest@Example.com")
    membership = accept_invitation(AuditContext.for_user(guest), secret, guest)
    assert membership.org == org and membership.role == Role.MEMBER
    with pytest.raises(ServiceError, match="accepted"):
        accept_invitation(AuditContext.for_user(guest), secret, guest)
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.accepted_by == guest


def test_expired_invitation_is_refused(invite, make_user):
    invitation, secret = invite()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    guest = make_user("guest@example.com")
    with pytest.raises(ServiceError, match="expired"):
        accept_invitation(AuditContext.for_user(guest), secret, guest)
    assert not Membership.objects.filter(user=guest).exists()


def test_wrong_email_is_refused(invite, make_user):
    _, secret = invite()
    stranger = make_user("stranger@example.com")
    with pytest.raises(ServiceError) as error:
        accept_invitation(AuditContext.for_user(stranger), secret, stranger)
    assert error.value.code == "forbidden" and "guest@example.com" in error.value.message
    assert not Membership.objects.filter(user=stranger).exists()


def test_revoked_or_unknown_invitation_is_refused(invite, make_user):
    invitation, secret = invite()
    revoke_invitation(AuditContext.system(), invitation)
    guest = make_user("guest@example.com")
    with pytest.raises(ServiceError, match="revoked"):
        accept_invitation(AuditContext.for_user(guest), secret, guest)
    with pytest.raises(ServiceError) as error:
        accept_invitation(AuditContext.for_user(guest), "not-a-real-secret", guest)
    assert error.value.code == "not_found"


def test_only_a_hash_of_the_secret_is_stored(invite):
    invitation, secret = invite()
    assert secret not in invitation.token_hash and len(invitation.token_hash) == 64


def test_admin_cannot_invite_an_owner(org, member_of):
    admin = member_of(org, Role.ADMIN)
    with pytest.raises(ServiceError) as error:
        invite_member(AuditContext.for_user(admin), org, "boss@example.com", Role.OWNER, actor_role=Role.ADMIN)
    assert error.value.code == "forbidden"


def test_invitation_page_for_the_wrong_account_explains(client, invite, make_user):
    _, secret = invite()
    client.force_login(make_user("someone@example.com"))
    page = client.get(f"/invitations/{secret}/").content.decode()
    assert "guest@example.com" in page and "Accept and join" not in page
    client.post(f"/invitations/{secret}/")
    assert not Membership.objects.filter(user__email="someone@example.com").exists()


def test_unknown_invitation_link_is_404(client):
    assert client.get("/invitations/nope/").status_code == 404
