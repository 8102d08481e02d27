"""Sign-in is rate limited per account and per client IP (counters in Redis)."""

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _attempt(client, email, password="wrong-password", ip="10.0.0.1"):
    return client.post(reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=ip)


@override_settings(CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT=3, CSM_LOGIN_MAX_ATTEMPTS_PER_IP=100)
def test_account_is_locked_after_too_many_failures_from_any_ip(client, owner):
    for n in range(3):
        assert _attempt(client, "owner@example.com", ip=f"10.0.0.{n}").status_code == 200
    refused = _attempt(client, "owner@example.com", password=PASSWORD, ip="10.9.9.9")
    assert refused.status_code == 429
    assert b"Too many failed sign-in attempts for this account" in refused.content
    assert "_auth_user_id" not in client.session
    # another account from the same IP is not locked
    assert _attempt(client, "other@example.com", ip="10.9.9.9").status_code == 200


@override_settings(CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT=100, CSM_LOGIN_MAX_ATTEMPTS_PER_IP=4)
def test_ip_is_locked_after_too_many_failures_on_any_account(client, owner):
    for n in range(4):
        _attempt(client, f"nobody{n}@example.com", ip="10.0.0.7")
    refused = _attempt(client, "owner@example.com", password=PASSWORD, ip="10.0.0.7")
    assert refused.status_code == 429 and b"your network address" in refused.content
    assert _attempt(client, "owner@example.com", password=PASSWORD, ip="10.0.0.8").status_code == 302


@override_settings(CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT=3, CSM_LOGIN_MAX_ATTEMPTS_PER_IP=100)
def test_success_clears_the_account_counter(client, owner):
    _attempt(client, "owner@example.com")
    _attempt(client, "owner@example.com")
    assert _attempt(client, "owner@example.com", password=PASSWORD).status_code == 302
    client.logout()
    _attempt(client, "owner@example.com")
    _attempt(client, "owner@example.com")
    assert _attempt(client, "owner@example.com", password=PASSWORD).status_code == 302


@override_settings(CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT=2, CSM_LOGIN_MAX_ATTEMPTS_PER_IP=100)
def test_account_key_ignores_case(client, owner):
    _attempt(client, "owner@example.com")
    _attempt(client, "OWNER@EXAMPLE.COM")
    assert _attempt(client, "Owner@Example.com", password=PASSWORD).status_code == 429


def _reset(client, email, ip="10.0.0.1"):
    return client.post(reverse("password-reset"), {"email": email}, REMOTE_ADDR=ip)


@override_settings(CSM_PASSWORD_RESET_MAX_PER_ACCOUNT=2, CSM_PASSWORD_RESET_MAX_PER_IP=100)
def test_password_reset_emails_per_address_are_capped_without_revealing_it(client, owner):
    from django.core import mail

    answers = [_reset(client, "Owner@example.com", ip=f"10.0.1.{n}") for n in range(4)]
    assert [a.status_code for a in answers] == [302] * 4
    assert {a.url for a in answers} == {reverse("password-reset-done")}  # capped looks the same as sent
    assert len(mail.outbox) == 2
    assert _reset(client, "nobody@example.com").status_code == 302  # unknown address: same answer


@override_settings(CSM_PASSWORD_RESET_MAX_PER_ACCOUNT=100, CSM_PASSWORD_RESET_MAX_PER_IP=3)
def test_password_reset_requests_per_ip_are_refused_with_429(client, owner):
    from django.core import mail

    for n in range(3):
        assert _reset(client, f"someone{n}@example.com", ip="10.0.2.1").status_code == 302
    refused = _reset(client, "owner@example.com", ip="10.0.2.1")
    assert refused.status_code == 429 and b"Too many password-reset requests" in refused.content
    assert mail.outbox == []
    assert _reset(client, "owner@example.com", ip="10.0.2.2").status_code == 302
    assert len(mail.outbox) == 1
