"""Web sessions: every sign-in is listed (device, IP, method, last seen), a person ends one or all others, an
admin ends a member's, a suspension ends them, sign-out ends the row; each is audited."""

import re

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.urls import reverse

from audit.context import AuditContext
from identity.membership import suspend_membership
from identity.models import UserSession
from identity.sessions import device_label, hash_session_key
from tenants.choices import Role
from tenants.models import Membership
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")


def signed_in(email, user_agent, ip) -> Client:
    """A browser that signed in with the password form, from ``ip`` with ``user_agent``."""
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    response = client.post(reverse("login"), {"username": email, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def is_signed_in(client) -> bool:
    response = client.get(reverse("account-settings"))
    return response.status_code == 200


@pytest.mark.parametrize(("agent", "label"), [
    (FIREFOX_LINUX, "Firefox on Linux"),
    (SAFARI_IPHONE, "Safari on iOS"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "Safari/537.36 Edg/126.0.0.0", "Edge on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "Safari/537.36", "Chrome on macOS"),
    ("curl/8.5.0", "curl"),
    ("", "Unknown device"),
])
def test_device_label(agent, label):
    assert device_label(agent) == label


def test_list_shows_both_sessions_and_marks_this_one(org, owner):
    laptop = signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.5")
    phone = signed_in("owner@example.com", SAFARI_IPHONE, "198.51.100.7")
    page = laptop.get(reverse("account-sessions"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Firefox on Linux" in html and "Safari on iOS" in html
    assert "203.0.113.5" in html and "198.51.100.7" in html and "password" in html
    assert html.count('"badge ok">this session<') == 1
    rows = UserSession.objects.filter(user=owner)
    assert rows.count() == 2 and set(rows.values_list("method", flat=True)) == {"password"}
    # the key is stored hashed only
    key = phone.cookies["sessionid"].value
    assert rows.filter(key_hash=hash_session_key(key)).exists()
    assert not rows.filter(key_hash=key).exists()


def test_revoking_one_session_signs_that_browser_out(org, owner):
    laptop = signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.5")
    phone = signed_in("owner@example.com", SAFARI_IPHONE, "198.51.100.7")
    phone_row = UserSession.objects.get(device="Safari on iOS")
    response = laptop.post(reverse("account-session-revoke", args=[phone_row.pk]))
    assert response.status_code == 302
    assert not is_signed_in(phone)
    assert is_signed_in(laptop)
    phone_row.refresh_from_db()
    assert phone_row.ended_at is not None and phone_row.end_reason == "revoked"
    event = org.audit_events.get(action="session.revoked")
    assert event.target_id == str(phone_row.pk) and event.after["device"] == "Safari on iOS"
    assert event.ip == "203.0.113.5"
    # signing the revoked browser out was not a sign-out of its own
    assert not org.audit_events.filter(action="user.signed_out").exists()



def test_another_persons_session_is_a_404(org, owner, make_user):
    laptop = signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.5")
    make_user("stranger@example.com")
    stranger = signed_in("stranger@example.com", SAFARI_IPHONE, "198.51.100.7")
    owners_row = UserSession.objects.get(user=owner)
    assert stranger.post(reverse("account-session-revoke", args=[owners_row.pk])).status_code == 404
    assert is_signed_in(laptop)
    assert "Firefox on Linux" not in stranger.get(reverse("account-sessions")).content.decode()


def test_revoke_all_others_keeps_this_session(org, owner):
    browsers = [signed_in("owner@example.com", FIREFOX_LINUX, f"203.0.113.{n}") for n in (1, 2, 3)]
    response = browsers[0].post(reverse("account-sessions-revoke-others"), follow=True)
    assert "Ended 2 other sessions" in response.content.decode()
    assert [is_signed_in(b) for b in browsers] == [True, False, False]
    event = org.audit_events.get(action="session.revoked_all")
    assert event.after["sessions_ended"] == 2


def test_sign_out_ends_the_row_and_is_audited(org, owner):
    laptop = signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.5")
    laptop.post(reverse("logout"))
    row = UserSession.objects.get(user=owner)
    assert row.ended_at is not None and row.end_reason == "signed out"
    event = org.audit_events.get(action="user.signed_out")
    assert event.actor_user_id == owner.pk and event.after["session"] == row.pk
    assert laptop.get(reverse("account-sessions")).status_code == 302


def test_suspension_ends_the_members_sessions(org, owner, member_of):
    member = member_of(org, Role.MEMBER, "member@example.com")
    browser = signed_in("member@example.com", FIREFOX_LINUX, "203.0.113.5")
    assert browser.get(reverse("org-home", args=["acme"])).status_code in (200, 302)
    membership = Membership.objects.get(org=org, user=member)
    suspend_membership(AuditContext.system("scim"), membership, reason="deprovisioned")
    assert not is_signed_in(browser)
    assert UserSession.objects.get(user=member).ended_at is not None
    assert not Session.objects.filter(session_key=browser.cookies["sessionid"].value).exists()
    assert org.audit_events.get(action="member.suspended").after["sessions_ended"] == 1


def test_admin_revokes_a_members_sessions(org, owner, member_of):
    member = member_of(org, Role.MEMBER, "member@example.com")
    admin = member_of(org, Role.ADMIN, "admin@example.com")
    browser = signed_in("member@example.com", FIREFOX_LINUX, "203.0.113.5")
    admin_browser = signed_in("admin@example.com", SAFARI_IPHONE, "198.51.100.7")
    members_page = admin_browser.get(reverse("member-list", args=["acme"])).content.decode()
    assert "End sessions" in members_page
    membership = Membership.objects.get(org=org, user=member)
    response = admin_browser.post(reverse("member-sessions-revoke", args=["acme", membership.pk]), follow=True)
    assert "Ended 1 session of member@example.com" in response.content.decode()
    assert not is_signed_in(browser)
    event = org.audit_events.get(action="member.sessions_revoked")
    assert event.actor_user_id == admin.pk and event.after["sessions_ended"] == 1

    # an admin may not end an owner's sessions; an owner may
    owner_browser = signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.9")
    owner_membership = Membership.objects.get(org=org, user=owner)
    refused = admin_browser.post(reverse("member-sessions-revoke", args=["acme", owner_membership.pk]), follow=True)
    assert "Only owners can end an owner&#x27;s sessions" in refused.content.decode()
    assert is_signed_in(owner_browser)
    admin_membership = Membership.objects.get(org=org, user=admin)
    owner_browser.post(reverse("member-sessions-revoke", args=["acme", admin_membership.pk]))
    assert not is_signed_in(admin_browser)


def test_admin_revoke_of_another_orgs_member_is_404(org, other_org, owner, member_of):
    stranger = member_of(other_org, Role.MEMBER, "stranger@example.com")
    browser = signed_in("stranger@example.com", FIREFOX_LINUX, "203.0.113.5")
    owner_browser = signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.9")
    membership = Membership.objects.get(org=other_org, user=stranger)
    response = owner_browser.post(reverse("member-sessions-revoke", args=["acme", membership.pk]))
    assert response.status_code == 404 and is_signed_in(browser)
    # and a plain member may not use the button at all
    member_of(org, Role.MEMBER, "plain@example.com")
    plain = signed_in("plain@example.com", FIREFOX_LINUX, "203.0.113.10")
    own = Membership.objects.get(org=org, user__email="plain@example.com")
    assert plain.post(reverse("member-sessions-revoke", args=["acme", own.pk])).status_code == 403


def test_sign_up_session_is_recorded(client):
    client.post(reverse("signup"), {"email": "new@example.com"})
    link = re.search(r"http://[^/]+(/signup/finish/\S+/)", mail.outbox[-1].body).group(1)
    assert client.post(link, {"password1": PASSWORD, "password2": PASSWORD}).status_code == 302
    row = UserSession.objects.get(user__email="new@example.com")
    assert row.method == "signup" and row.ended_at is None


def test_last_seen_is_updated_at_most_once_a_minute(org, owner):
    laptop = signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.5")
    row = UserSession.objects.get(user=owner)
    first_seen = row.last_seen_at
    laptop.get(reverse("account-sessions"))
    row.refresh_from_db()
    assert row.last_seen_at == first_seen
    UserSession.objects.filter(pk=row.pk).update(last_seen_at=first_seen.replace(year=first_seen.year - 1))
    laptop.get(reverse("account-sessions"), REMOTE_ADDR="203.0.113.77")
    row.refresh_from_db()
    assert row.last_seen_at > first_seen and row.ip == "203.0.113.77"


def test_old_rows_go_at_the_next_sign_in(org, owner):
    signed_in("owner@example.com", FIREFOX_LINUX, "203.0.113.5")
    old = UserSession.objects.get(user=owner)
    UserSession.objects.filter(pk=old.pk).update(last_seen_at=old.last_seen_at.replace(year=old.last_seen_at.year - 1))
    signed_in("owner@example.com", SAFARI_IPHONE, "198.51.100.7")
    assert list(UserSession.objects.filter(user=owner).values_list("device", flat=True)) == ["Safari on iOS"]
