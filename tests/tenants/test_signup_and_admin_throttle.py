"""Sign-up never tells whether an address has an account and is throttled per IP; the admin sign-in
shares the site's sign-in rate limit."""

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _sign_up(client, email, ip="10.0.3.1"):
    return client.post(reverse("signup"), {"email": email}, REMOTE_ADDR=ip)


def test_sign_up_answers_the_same_for_a_taken_address_and_emails_its_owner(client, owner):
    new = _sign_up(client, "someone-new@example.com")
    taken = _sign_up(client, "OWNER@example.com")
    assert new.status_code == taken.status_code == 200
    strip = [(r.content.decode().replace("someone-new@example.com", "X").replace("owner@example.com", "X"))
             for r in (new, taken)]
    assert strip[0] == strip[1]
    assert b"already exists" not in taken.content
    assert [m.to for m in mail.outbox] == [["someone-new@example.com"], ["owner@example.com"]]
    assert "already uses this address" in mail.outbox[1].body and "/signup/finish/" not in mail.outbox[1].body


@override_settings(CSM_SIGNUP_MAX_PER_IP=3, CSM_SIGNUP_MAX_PER_ACCOUNT=100)
def test_sign_up_is_throttled_per_ip(client):
    for n in range(3):
        assert _sign_up(client, f"person{n}@example.com").status_code == 200
    refused = _sign_up(client, "person9@example.com")
    assert refused.status_code == 429 and b"Too many sign-up requests" in refused.content
    assert len(mail.outbox) == 3
    assert _sign_up(client, "person9@example.com", ip="10.0.3.2").status_code == 200


@override_settings(CSM_SIGNUP_MAX_PER_IP=100, CSM_SIGNUP_MAX_PER_ACCOUNT=2)
def test_sign_up_emails_per_address_are_capped_without_revealing_it(client, owner):
    answers = [_sign_up(client, "owner@example.com", ip=f"10.0.4.{n}") for n in range(4)]
    assert [a.status_code for a in answers] == [200] * 4
    assert len(mail.outbox) == 2


def _admin_attempt(client, password="wrong-password", ip="10.0.5.1"):
    return client.post(reverse("admin:login"), {"username": "admin@example.com", "password": password},
                       REMOTE_ADDR=ip)


@override_settings(CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT=3, CSM_LOGIN_MAX_ATTEMPTS_PER_IP=100)
def test_admin_sign_in_is_rate_limited_like_the_site_sign_in(client, make_user):
    make_user("admin@example.com", is_staff=True, is_superuser=True)
    for n in range(3):
        assert _admin_attempt(client, ip=f"10.0.5.{n}").status_code == 200
    refused = _admin_attempt(client, password=PASSWORD, ip="10.0.6.1")
    assert refused.status_code == 429 and b"Too many failed sign-in attempts" in refused.content
    assert "_auth_user_id" not in client.session
    # the same counters as /login/: the account is locked there too
    site = client.post(reverse("login"), {"username": "admin@example.com", "password": PASSWORD})
    assert site.status_code == 429


def test_admin_sign_in_still_works(client, make_user):
    make_user("admin@example.com", is_staff=True, is_superuser=True)
    response = _admin_attempt(client, password=PASSWORD)
    assert response.status_code == 302 and client.get(reverse("admin:index")).status_code == 200
