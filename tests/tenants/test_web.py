"""Web pages of tenants: sign-in/up, orgs, members, invitations, service accounts and tokens."""

import re

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from audit.models import AuditEvent
from tenants.choices import Role
from tenants.models import ApiToken, Membership, Org, ServiceAccount
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_home_sends_anonymous_people_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_sign_in_lands_on_the_org_and_is_audited(client, org, owner):
    response = client.post(reverse("login"), {"username": "OWNER@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").url == reverse("org-home", args=["acme"])
    page = client.get(reverse("org-home", args=["acme"]))
    assert page.status_code == 200 and b"Acme Corp" in page.content
    event = AuditEvent.objects.filter(org=org, action="user.signed_in").get()
    assert event.actor_user_id == owner.pk


def test_wrong_password_is_refused(client, org):
    response = client.post(reverse("login"), {"username": "owner@example.com", "password": "nope"})
    assert response.status_code == 200 and b"Please enter a correct" in response.content


def _sign_up_link(email):
    body = mail.outbox[-1].body
    assert mail.outbox[-1].to == [email]
    return re.search(r"http://[^/]+(/signup/finish/\S+/)", body).group(1)


def test_sign_up_by_emailed_link_then_create_an_org(client):
    response = client.post(reverse("signup"), {"email": "New@example.com"})
    assert response.status_code == 200 and b"Check your email" in response.content
    link = _sign_up_link("new@example.com")
    page = client.get(link)
    assert page.status_code == 200 and b"new@example.com" in page.content
    response = client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert response.url == reverse("org-create")
    response = client.post(reverse("org-create"), {"name": "New Co", "slug": "newco"})
    assert response.url == reverse("org-home", args=["newco"])
    org = Org.objects.get(slug="newco")
    assert Membership.objects.get(org=org).role == Role.OWNER
    assert client.get("/").url == reverse("org-home", args=["newco"])


def test_sign_up_link_refuses_weak_password_forgery_and_a_taken_address(client, owner):
    client.post(reverse("signup"), {"email": "x@example.com"})
    link = _sign_up_link("x@example.com")
    response = client.post(link, {"password1": "123", "password2": "123"})
    assert b"too short" in response.content
    assert client.get(link.replace("/finish/", "/finish/A")).status_code == 404
    client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    client.logout()
    again = client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert again.status_code == 200 and b"already exists" in again.content


def test_org_slug_must_be_unique(client, org, make_user):
    client.force_login(make_user())
    response = client.post(reverse("org-create"), {"name": "Again", "slug": "acme"})
    assert response.status_code == 200 and b"already exists" in response.content


def test_switcher_lists_every_org_of_the_user(client, org, owner, make_org):
    make_org("second", owner, "Second Org")
    client.force_login(owner)
    page = client.get(reverse("org-home", args=["second"])).content.decode()
    assert 'data-testid="org-switcher"' in page
    assert reverse("org-home", args=["acme"]) in page and reverse("org-home", args=["second"]) in page
    assert client.get("/").url == reverse("org-home", args=["second"])  # remembered as the current org


def test_password_reset_sends_a_working_link(client, owner):
    client.post(reverse("password-reset"), {"email": "owner@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and b"new password" in form_page.content.lower()
    response = client.post(form_page.redirect_chain[-1][0], {"new_password1": "another-long-passphrase",
                                                             "new_password2": "another-long-passphrase"})
    assert response.url == reverse("password-reset-complete")
    owner.refresh_from_db()
    assert owner.check_password("another-long-passphrase")


def test_owner_changes_a_role_and_removes_a_member(client, org, owner, member_of):
    colleague = member_of(org, Role.MEMBER)
    membership = Membership.objects.get(org=org, user=colleague)
    client.force_login(owner)
    client.post(reverse("member-role", args=["acme", membership.pk]), {"role": "admin"})
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    client.post(reverse("member-remove", args=["acme", membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_last_owner_cannot_step_down(client, org, owner):
    client.force_login(owner)
    membership = Membership.objects.get(org=org, user=owner)
    response = client.post(reverse("member-role", args=["acme", membership.pk]), {"role": "member"}, follow=True)
    assert b"at least one owner" in response.content
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_admin_cannot_grant_owner(client, org, member_of):
    admin = member_of(org, Role.ADMIN)
    other = member_of(org, Role.MEMBER)
    client.force_login(admin)
    membership = Membership.objects.get(org=org, user=other)
    response = client.post(reverse("member-role", args=["acme", membership.pk]), {"role": "owner"}, follow=True)
    assert b"owners.manage" in response.content
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER


def test_invitation_by_email_then_sign_up_with_the_invited_address(client, org, owner,
                                                                     django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("invitation-create", args=["acme"]), {"email": "Newbie@Example.com", "role": "reader"})
    link = re.search(r"https?://[^/]+(/invitations/\S+/)", mail.outbox[0].body).group(1)
    client.logout()
    page = client.get(link)
    assert b"Create an account" in page.content
    signup_url = re.search(r'href="(/signup/\?invitation=[^"]+)"', page.content.decode()).group(1)
    # the invited address is fixed: a different one in the POST is ignored
    response = client.post(signup_url.replace("&amp;", "&"), {"email": "evil@example.com", "password1": PASSWORD,
                                                               "password2": PASSWORD})
    assert response.url == reverse("org-home", args=["acme"])
    membership = Membership.objects.get(org=org, user__email="newbie@example.com")
    assert membership.role == Role.READER
    assert client.get(link).content.count(b"accepted") == 1  # single use


def test_signed_in_invitee_accepts_with_one_click(client, org, owner, make_user, django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("invitation-create", args=["acme"]), {"email": "joiner@example.com", "role": "member"})
    link = re.search(r"https?://[^/]+(/invitations/\S+/)", mail.outbox[0].body).group(1)
    joiner = make_user("joiner@example.com")
    client.force_login(joiner)
    assert b"Accept and join" in client.get(link).content
    assert client.post(link).url == reverse("org-home", args=["acme"])
    assert Membership.objects.filter(org=org, user=joiner, role=Role.MEMBER).exists()


def test_service_account_token_is_shown_once(client, org, owner):
    client.force_login(owner)
    response = client.post(reverse("service-account-list", args=["acme"]),
                           {"name": "prod-agent", "role": "snapshotter", "description": "k8s prod"})
    account = ServiceAccount.objects.get(org=org, name="prod-agent")
    assert response.url == reverse("service-account-detail", args=["acme", account.pk])
    response = client.post(reverse("service-account-token-create", args=["acme", account.pk]),
                           {"name": "default", "expires_in_days": "30"})
    page = client.get(response.url).content.decode()
    secret = re.search(r'data-testid="secret-value">(csm_[0-9A-Za-z]{40})<', page).group(1)
    assert ApiToken.objects.get(service_account=account).expires_at is not None
    again = client.get(response.url).content.decode()
    assert secret not in again and secret[:12] in again  # the prefix stays, the secret is gone


def test_rotate_and_revoke_a_personal_token(client, org, owner):
    client.force_login(owner)
    client.post(reverse("personal-tokens", args=["acme"]), {"name": "laptop"})
    token = ApiToken.objects.get(user=owner)
    client.get(reverse("personal-tokens", args=["acme"]))  # consumes the one-time display
    client.post(reverse("personal-token-rotate", args=["acme", token.pk]), {"grace_seconds": "3600"})
    token.refresh_from_db()
    assert token.rotated_to is not None and token.status == "rotating"
    page = client.get(reverse("personal-tokens", args=["acme"])).content.decode()
    assert "New token laptop" in page
    client.post(reverse("personal-token-revoke", args=["acme", token.rotated_to.pk]))
    token.rotated_to.refresh_from_db()
    assert token.rotated_to.revoked_at is not None


def test_reader_sees_members_but_cannot_manage_them(client, org, member_of):
    reader = member_of(org, Role.READER)
    client.force_login(reader)
    page = client.get(reverse("member-list", args=["acme"]))
    assert page.status_code == 200 and b"Send invitation" not in page.content
    assert client.get(reverse("service-account-list", args=["acme"])).status_code == 403


def test_deactivate_a_service_account_and_revoke_an_invitation(client, org, owner):
    client.force_login(owner)
    client.post(reverse("service-account-list", args=["acme"]), {"name": "old-agent", "role": "reader"})
    account = ServiceAccount.objects.get(org=org, name="old-agent")
    client.post(reverse("service-account-token-create", args=["acme", account.pk]), {"name": "t"})
    client.post(reverse("service-account-deactivate", args=["acme", account.pk]))
    account.refresh_from_db()
    assert account.deactivated_at is not None
    assert ApiToken.objects.get(service_account=account).revoked_at is not None
    client.post(reverse("invitation-create", args=["acme"]), {"email": "later@example.com", "role": "member"})
    invitation = org.invitations.get()
    client.post(reverse("invitation-revoke", args=["acme", invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.status == "revoked"


def test_post_only_pages_refuse_get(client, org, owner):
    client.force_login(owner)
    assert client.get(reverse("org-update", args=["acme"])).status_code == 405


def test_org_view_takes_a_permission_per_method(rf, org, member_of):
    from django.contrib.sessions.backends.cache import SessionStore
    from django.http import HttpResponse

    from csm.web import org_view

    @org_view({"GET": "org.view", "POST": "org.manage"})
    def page(request):
        return HttpResponse("ok")

    reader = member_of(org, Role.READER)

    def call(method):
        request = getattr(rf, method)("/o/acme/x/")
        request.user, request.session = reader, SessionStore()
        return page(request, org="acme")

    assert call("get").status_code == 200
    with pytest.raises(PermissionDenied, match="org.manage"):
        call("post")
    assert call("delete").status_code == 405
    assert page.csm_permission == {"GET": "org.view", "POST": "org.manage"}


def test_a_snapshotter_only_user_gets_a_page_saying_so_not_a_403(client, org, member_of):
    agent_person = member_of(org, Role.SNAPSHOTTER)
    client.force_login(agent_person)
    page = client.get("/")
    assert page.status_code == 200 and b"Your role has no pages here" in page.content
    assert b"Acme Corp" in page.content and b"Snapshotter" in page.content


def test_home_skips_orgs_whose_pages_the_role_cannot_see(client, org, owner, member_of, make_org):
    person = member_of(org, Role.SNAPSHOTTER)
    second = make_org("second", owner, "Second Org")
    Membership.objects.create(org=second, user=person, role=Role.READER)
    client.force_login(person)
    session = client.session
    session["current_org"] = "acme"  # remembered, but the snapshotter role has no pages there
    session.save()
    assert client.get("/").url == reverse("org-home", args=["second"])
