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
