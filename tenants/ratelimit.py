"""Sign-in rate limiting, per account and per client IP, counted in the shared cache (Redis in
production and tests) so every web process sees the same counters.

Failed attempts are counted in a fixed window of ``CSM_LOGIN_WINDOW_SECONDS``; once an account or an
IP reaches its limit, further attempts are refused without checking the password until the window
ends. A successful sign-in clears the account's counter (not the IP's).
"""

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"csm:login:{kind}:{digest}"


@dataclass
class Limited:
    scope: str  # "account" or "ip"
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, (self.retry_after + 59) // 60)
        what = "this account" if self.scope == "account" else "your network address"
        return (f"Too many failed sign-in attempts for {what}. Try again in {minutes} minute"
                f"{'s' if minutes != 1 else ''}, or reset your password.")


def _limits(account: str, ip: str | None) -> list[tuple[str, str, int]]:
    checks = []
    if account:
        checks.append(("account", _key("account", account), settings.CSM_LOGIN_MAX_ATTEMPTS_PER_ACCOUNT))
    if ip:
        checks.append(("ip", _key("ip", ip), settings.CSM_LOGIN_MAX_ATTEMPTS_PER_IP))
    return checks


def check(account: str, ip: str | None) -> Limited | None:
    """The limit that refuses this attempt, or None when it may go ahead."""
    for scope, key, maximum in _limits(account, ip):
        if (cache.get(key) or 0) >= maximum:
            window_end = cache.get(key + ":end") or (time.time() + settings.CSM_LOGIN_WINDOW_SECONDS)
            return Limited(scope, max(1, int(window_end - time.time())))
    return None


def record_failure(account: str, ip: str | None) -> None:
    for _scope, key, _maximum in _limits(account, ip):
        # add() starts the window (and its expiry) only for the first failure; incr() keeps the expiry.
        window = settings.CSM_LOGIN_WINDOW_SECONDS
        if cache.add(key, 1, timeout=window):
            cache.set(key + ":end", time.time() + window, timeout=window)
            continue
        try:
            cache.incr(key)
        except ValueError:  # the window ended between add() and incr()
            cache.add(key, 1, timeout=window)


def record_success(account: str) -> None:
    if account:
        key = _key("account", account)
        cache.delete_many([key, key + ":end"])
