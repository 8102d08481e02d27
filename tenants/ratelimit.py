"""Rate limiting of sign-in and password-reset requests, per account and per client IP, counted in the
shared cache (Redis in production and tests) so every web process sees the same counters.

Sign-in: failed attempts are counted in a fixed window of ``CSM_LOGIN_WINDOW_SECONDS``; once an account
or an IP reaches its limit, further attempts are refused without checking the password until the window
ends. A successful sign-in clears the account's counter (not the IP's).

Password reset: every request counts, in a window of ``CSM_PASSWORD_RESET_WINDOW_SECONDS``. Over the IP
limit the page answers 429; over the per-address limit no further email goes out, and the page looks the
same as always (it never tells whether an address has an account).

Sign-up: the same two limits as password reset (``CSM_SIGNUP_*``), since it sends an email too.

The admin sign-in (``/admin/login/``) uses the same sign-in counters as ``/login/`` (tenants/admin.py).
"""

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


def _key(kind: str, value: str, purpose: str = "login") -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"csm:{purpose}:{kind}:{digest}"


@dataclass
class Limited:
    scope: str  # "account" or "ip"
    retry_after: int  # seconds

    @property
    def minutes(self) -> str:
        minutes = max(1, (self.retry_after + 59) // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"

    @property
    def message(self) -> str:
        what = "this account" if self.scope == "account" else "your network address"
        return f"Too many failed sign-in attempts for {what}. Try again in {self.minutes}, or reset your password."


def _limits(account: str, ip: str | None) -> list[tuple[str, str, int]]:
    checks = []
    if account:
        checks.append(("account", _key("account", account), settings.CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT))
    if ip:
        checks.append(("ip", _key("ip", ip), settings.CSM_LOGIN_MAX_ATTEMPTS_PER_IP))
    return checks


def _over(scope: str, key: str, maximum: int, window: int) -> Limited | None:
    if (cache.get(key) or 0) >= maximum:
        window_end = cache.get(key + ":end") or (time.time() + window)
        return Limited(scope, max(1, int(window_end - time.time())))
    return None


def _count(key: str, window: int) -> None:
    # add() starts the window (and its expiry) only for the first hit; incr() keeps the expiry.
    if cache.add(key, 1, timeout=window):
        cache.set(key + ":end", time.time() + window, timeout=window)
        return
    try:
        cache.incr(key)
    except ValueError:  # the window ended between add() and incr()
        cache.add(key, 1, timeout=window)


def check(account: str, ip: str | None) -> Limited | None:
    """The limit that refuses this attempt, or None when it may go ahead."""
    for scope, key, maximum in _limits(account, ip):
        limited = _over(scope, key, maximum, settings.CSM_LOGIN_WINDOW_SECONDS)
        if limited is not None:
            return limited
    return None


def record_failure(account: str, ip: str | None) -> None:
    for _scope, key, _maximum in _limits(account, ip):
        _count(key, settings.CSM_LOGIN_WINDOW_SECONDS)


def _request_limits(purpose: str, email: str, ip: str | None, max_per_ip: int, max_per_account: int,
                    window: int) -> tuple[Limited | None, bool]:
    """Count one emailing request (password reset, sign-up). Returns (the IP limit that refuses it or
    None, whether an email may be sent to ``email``)."""
    if ip:
        ip_key = _key("ip", ip, purpose)
        limited = _over("ip", ip_key, max_per_ip, window)
        if limited is not None:
            return limited, False
        _count(ip_key, window)
    if not email.strip():
        return None, False
    account_key = _key("account", email, purpose)
    may_send = _over("account", account_key, max_per_account, window) is None
    if may_send:
        _count(account_key, window)
    return None, may_send


def password_reset(email: str, ip: str | None) -> tuple[Limited | None, bool]:
    """Count one password-reset request. Returns (the IP limit that refuses it or None, whether an email
    may be sent to ``email``)."""
    return _request_limits("reset", email, ip, settings.CSM_PASSWORD_RESET_MAX_PER_IP,
                           settings.CSM_PASSWORD_RESET_MAX_PER_ACCOUNT, settings.CSM_PASSWORD_RESET_WINDOW_SECONDS)


def sign_up(email: str, ip: str | None) -> tuple[Limited | None, bool]:
    """Count one sign-up request, like a password reset: over the IP limit the page answers 429; over the
    per-address limit no further email goes out and the page looks the same as always."""
    return _request_limits("signup", email, ip, settings.CSM_SIGNUP_MAX_PER_IP,
                           settings.CSM_SIGNUP_MAX_PER_ACCOUNT, settings.CSM_SIGNUP_WINDOW_SECONDS)


def record_success(account: str) -> None:
    if account:
        key = _key("account", account)
        cache.delete_many([key, key + ":end"])


# --- the second factor of a sign-in (identity/twofactor.py) ---------------------------------------------
# Failed codes are counted per account (CSM_TWO_FACTOR_MAX_ATTEMPTS) and against the sign-in counter of the
# client IP, in the sign-in window; a passed second factor clears the account's count.

def check_second_factor(account: str, ip: str | None) -> Limited | None:
    """The limit that refuses another second-factor attempt for ``account``, or None."""
    window = settings.CSM_LOGIN_WINDOW_SECONDS
    limited = _over("account", _key("account", account, "2fa"), settings.CSM_TWO_FACTOR_MAX_ATTEMPTS, window)
    if limited is None and ip:
        limited = _over("ip", _key("ip", ip), settings.CSM_LOGIN_MAX_ATTEMPTS_PER_IP, window)
    return limited


def record_second_factor_failure(account: str, ip: str | None) -> None:
    _count(_key("account", account, "2fa"), settings.CSM_LOGIN_WINDOW_SECONDS)
    if ip:
        _count(_key("ip", ip), settings.CSM_LOGIN_WINDOW_SECONDS)


def record_second_factor_success(account: str) -> None:
    key = _key("account", account, "2fa")
    cache.delete_many([key, key + ":end"])
