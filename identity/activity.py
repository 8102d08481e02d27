"""Unusual activity: the one place that marks a deviation from an org's normal use of its credentials.

``flag_unusual(ctx, org, kind, summary, details)`` records a ``security.unusual_activity`` audit event (the
audit log shows and filters these) and, once the transaction commits, hands it to the functions registered
in identity.hooks (alerts: ON_UNUSUAL_ACTIVITY). The kinds are fixed (UnusualKind); the detectors that call
it live here too (docs/identity.md, "Unusual activity"):

- ``note_token_network`` (tenants.hooks.token_used, every API request): a token used from a network (/24,
  /56) it never used — the first network of a token is learned silently. One cache lookup per request;
  PostgreSQL only when the shared cache does not know the (token, network) pair.
- ``note_environment_reporter`` (snapshots, when a report is accepted): an environment reported by a
  service account or token that never reported it before — its first reporter is learned silently.
- ``note_failed_sign_in`` (identity.signin.sign_in_failed): ``CSM_UNUSUAL_FAILED_SIGN_INS`` failed sign-ins
  of one account within ``CSM_UNUSUAL_FAILED_SIGN_IN_WINDOW_SECONDS``, once per window in each of its orgs.
- A change outside an environment's change windows is flagged by snapshots' ingest (it knows the schedule).
"""

import hashlib
import ipaddress
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.context import AuditContext
from audit.services import record_event
from identity import hooks
from identity.models import EnvironmentReporter, TokenNetwork
from tenants.models import ApiToken

logger = logging.getLogger(__name__)


class UnusualKind(models.TextChoices):
    NEW_NETWORK = "token_new_network", "Token used from a network it never used"
    NEW_ENVIRONMENT_REPORTER = "new_environment_reporter", "Environment reported by a new token or account"
    FAILED_SIGN_INS = "failed_sign_ins", "Repeated failed sign-ins"
    OUTSIDE_CHANGE_WINDOW = "outside_change_window", "Change outside the environment's change windows"


def flag_unusual(ctx: AuditContext, org, kind: str, summary: str, details: dict | None = None, target=None):
    """Record the unusual activity as an audit event of ``org`` (inside the caller's transaction) and call
    the registered hooks after commit. Returns the audit event."""
    after = {"kind": str(kind), "summary": summary, **(details or {})}
    event = record_event(ctx, org, AuditAction.UNUSUAL_ACTIVITY, target, after=after)

    def notify():
        for fn in list(hooks.unusual_activity):
            try:
                fn(event)
            except Exception:  # a failing listener must not hide the others
                logger.exception("unusual-activity hook %r failed for audit event %s", fn, event.pk)

    transaction.on_commit(notify)
    return event


# --- a token used from a new network ---------------------------------------------------------------

# Networks named in a flag's details (the token may have used many).
KNOWN_NETWORKS_SHOWN = 10


def network_of(ip: str | None) -> str | None:
    """The network ``ip`` belongs to for this purpose: its /24 (IPv4) or /56 (IPv6) by default (an
    IPv4-mapped IPv6 address counts as IPv4). None for a missing or malformed address."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = settings.CSM_UNUSUAL_IPV4_PREFIX if address.version == 4 else settings.CSM_UNUSUAL_IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _token_network_key(token_id: int, network: str) -> str:
    return f"csm:unusual:tokennet:{token_id}:{network}"


def note_token_network(request, token, ip: str | None) -> None:
    """``tenants.hooks.token_used``: learn the token's network, flag it when it is new and the token had
    been used from another network before. Race-safe: the token row is locked while its networks are
    read and written, so two requests from one new network flag it once."""
    network = network_of(ip)
    if network is None:
        return
    key = _token_network_key(token.pk, network)
    if cache.get(key):
        return
    request_fields = AuditContext.request_fields(request)
    with transaction.atomic():
        ApiToken.objects.select_for_update().filter(pk=token.pk).values_list("pk", flat=True).first()
        now = timezone.now()
        if not TokenNetwork.objects.filter(token_id=token.pk, network=network).update(last_seen=now):
            known = list(TokenNetwork.objects.filter(token_id=token.pk).order_by("first_seen")
                         .values_list("network", flat=True)[:KNOWN_NETWORKS_SHOWN + 1])
            TokenNetwork.objects.create(org_id=token.org_id, token_id=token.pk, network=network, first_seen=now,
                                        last_seen=now)
            if known:
                ctx = AuditContext.for_token(token, **request_fields)
                flag_unusual(ctx, token.org, UnusualKind.NEW_NETWORK,
                             f"Token {token.name!r} ({token.prefix}…) used from {network}, a network it never used",
                             {"token": token.prefix, "token_name": token.name, "network": network, "ip": ip,
                              "known_networks": known[:KNOWN_NETWORKS_SHOWN]},
                             target=("token", token.pk, f"{token.name} ({token.prefix}…)"))
        transaction.on_commit(lambda: cache.set(key, 1, timeout=settings.CSM_UNUSUAL_NETWORK_CACHE_SECONDS))


# --- an environment reported by a new reporter ------------------------------------------------------

# Earlier reporters named in a flag's details.
KNOWN_REPORTERS_SHOWN = 10


def reporter_key(ctx: AuditContext) -> str | None:
    """Who reports, as ``EnvironmentReporter`` keys it: a service account (any of its tokens: a rotation
    is not a new reporter), a person's token, or a person signed in. None for anyone else."""
    if ctx.service_account_id:
        return f"service_account:{ctx.service_account_id}"
    if ctx.token_id:
        return f"token:{ctx.token_id}"
    if ctx.user_id:
        return f"user:{ctx.user_id}"
    return None


def note_environment_reporter(ctx: AuditContext, org, environment_id: int, environment_name: str) -> None:
    """A report of the environment was accepted (called by snapshots inside the acceptance transaction,
    which holds the environment's acceptance lock, so two first reports cannot both be "the first").
    Learn the reporter; flag it when the environment had another reporter before."""
    key = reporter_key(ctx)
    if key is None:
        return
    cache_key = "csm:unusual:envrep:" + hashlib.sha256(f"{environment_id}|{key}".encode()).hexdigest()[:32]
    if cache.get(cache_key):
        return
    with transaction.atomic():
        reporters = EnvironmentReporter.objects.filter(org=org, environment_id=environment_id)
        if not reporters.filter(reporter_key=key).exists():
            earlier = list(reporters.order_by("first_seen").values_list("reporter_label", flat=True)
                           [:KNOWN_REPORTERS_SHOWN])
            try:
                with transaction.atomic():
                    EnvironmentReporter.objects.create(org=org, environment_id=environment_id, reporter_key=key,
                                                       reporter_label=ctx.actor_label[:255])
            except IntegrityError:  # another process learned it first: not new, nothing to flag
                earlier = []
            if earlier:
                flag_unusual(ctx, org, UnusualKind.NEW_ENVIRONMENT_REPORTER,
                             f"{environment_name} reported by {ctx.actor_label}, which never reported it before",
                             {"environment": environment_name, "reporter": ctx.actor_label, "reporter_key": key,
                              "earlier_reporters": earlier},
                             target=("environment", environment_id, environment_name))
        transaction.on_commit(lambda: cache.set(cache_key, 1, timeout=settings.CSM_UNUSUAL_NETWORK_CACHE_SECONDS))


# --- repeated failed sign-ins -----------------------------------------------------------------------


def _count_in_window(key: str, window: int) -> int:
    """Add one to the counter ``key`` of a fixed window (started by its first hit); the new count. Redis'
    INCR is atomic, so exactly one caller sees each count."""
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add() and incr()
        cache.add(key, 1, timeout=window)
        return 1


def note_failed_sign_in(ctx: AuditContext, user, orgs) -> None:
    """A refused sign-in of ``user`` (called inside sign_in_failed's transaction): at the
    ``CSM_UNUSUAL_FAILED_SIGN_INS``-th failure within the window, flag it in each of ``orgs``."""
    window = settings.CSM_UNUSUAL_FAILED_SIGN_IN_WINDOW_SECONDS
    threshold = settings.CSM_UNUSUAL_FAILED_SIGN_INS
    if _count_in_window(f"csm:unusual:signin:{user.pk}", window) != threshold:
        return
    label = user.email or user.get_username()
    minutes = max(1, window // 60)
    for org in orgs:
        flag_unusual(ctx, org, UnusualKind.FAILED_SIGN_INS,
                     f"{threshold} failed sign-ins of {label} within {minutes} minute{'s' if minutes != 1 else ''}",
                     {"account": label, "failures": threshold, "window_seconds": window, "ip": ctx.ip},
                     target=("user", user.pk, label))
