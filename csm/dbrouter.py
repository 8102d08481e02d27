"""Read-replica routing (docs/scaling.md, "Read replicas"): reads of GET/HEAD/OPTIONS requests go to a
PostgreSQL streaming replica, every write and every read that must see a write goes to ``default``.

Registered only when ``DATABASE_REPLICA_URL`` names a replica (csm/settings.py adds the ``replica``,
``replica2``, ... aliases, ``PrimaryReplicaRouter`` and ``ReplicaRoutingMiddleware``). The rules:

- Nothing reads a replica unless ``ReplicaRoutingMiddleware`` allowed it for the current request (a safe
  method, no recent write by the same client). Celery workers, management commands, migrations and the
  sweeper never pass through it, so they read and write the primary.
- Inside a transaction (``atomic``) on the primary every read goes to the primary.
- Once the request has written (any ``db_for_write``), its remaining reads go to the primary; a client
  (session cookie or ``Authorization`` header) that wrote keeps reading the primary for
  ``CSM_REPLICA_STICKY_SECONDS`` (a marker in the shared cache), so "PUT a report, then GET it" never
  reads a replica that has not replayed the write yet.
- A replica that cannot be reached, or lags more than ``CSM_REPLICA_MAX_LAG_SECONDS``, is skipped for
  ``_RETRY_SECONDS`` in this process and the primary answers instead.
- A replica alias that is the primary's own database (the test runner's ``MIRROR``) is read as ``default``.
"""

import contextlib
import contextvars
import dataclasses
import hashlib
import logging
import random
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections

log = logging.getLogger(__name__)

PRIMARY = "default"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRY_SECONDS = 5.0  # a failed or lagging replica is not tried again for this long (per process)
_LAG_CHECK_SECONDS = 1.0  # a replica's lag is measured at most this often (per process)
_STICKY_PREFIX = "csm:replica-sticky:"


@dataclasses.dataclass
class _Routing:
    """What the current request may do: read a replica at all, and whether it has written yet."""

    replica_allowed: bool = False
    wrote: bool = False
    alias: str | None = None  # the replica this request reads, chosen at its first read


_routing: contextvars.ContextVar[_Routing | None] = contextvars.ContextVar("csm_db_routing", default=None)
_skip_until: dict[str, float] = {}  # replica alias -> monotonic time before which it is not used
_lag_checked: dict[str, float] = {}  # replica alias -> monotonic time of its last good lag check


def reset_replica_health() -> None:
    """Forget which replicas this process skips (after an operator brought one back, and between tests)."""
    _skip_until.clear()
    _lag_checked.clear()


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith("replica")]


def _is_mirror(alias: str) -> bool:
    replica, primary = connections[alias].settings_dict, connections[PRIMARY].settings_dict
    if replica is primary:
        return True
    return all(replica.get(key) == primary.get(key) for key in ("HOST", "PORT", "NAME"))


def _lag_seconds(alias: str) -> float:
    """How far behind the primary the replica's replay is: 0 when it has replayed all it received (an idle
    primary writes nothing, so the last replayed transaction's age alone would read as lag)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
            "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END")
        return float(cursor.fetchone()[0])


def _usable(alias: str) -> bool:
    now = time.monotonic()
    if _skip_until.get(alias, 0.0) > now:
        return False
    connection = connections[alias]
    try:
        connection.close_if_health_check_failed()
        connection.ensure_connection()
        max_lag = settings.CSM_REPLICA_MAX_LAG_SECONDS
        if max_lag and now - _lag_checked.get(alias, float("-inf")) >= _LAG_CHECK_SECONDS:
            lag = _lag_seconds(alias)
            if lag > max_lag:
                log.warning("replica %s lags %.1f s (limit %d s): reading the primary", alias, lag, max_lag)
                _skip_until[alias] = now + _RETRY_SECONDS
                return False
            _lag_checked[alias] = now
    except DatabaseError as exc:
        log.warning("replica %s unreachable (%s): reading the primary for %.0f s", alias, exc, _RETRY_SECONDS)
        _skip_until[alias] = now + _RETRY_SECONDS
        with contextlib.suppress(DatabaseError):
            connection.close()
        return False
    return True


def _read_alias() -> str:
    state = _routing.get()
    if state is None or not state.replica_allowed or state.wrote or connections[PRIMARY].in_atomic_block:
        return PRIMARY
    if state.alias is not None and _skip_until.get(state.alias, 0.0) <= time.monotonic():
        return state.alias
    candidates = [alias for alias in replica_aliases() if not _is_mirror(alias)]
    random.shuffle(candidates)
    for alias in candidates:
        if _usable(alias):
            state.alias = alias
            return alias
    state.alias = None
    return PRIMARY


class PrimaryReplicaRouter:
    """Reads as ``_read_alias`` decides, writes and migrations on the primary."""

    def db_for_read(self, model, **hints):
        return _read_alias()

    def db_for_write(self, model, **hints):
        state = _routing.get()
        if state is not None:
            state.wrote = True
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # every alias holds the same data (the replicas are copies of the primary)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY


def sticky_key(credential: str) -> str:
    """The cache key marking that the client with this credential (an ``Authorization`` header or a session
    key) wrote recently: hashed, the cache never holds a credential; "" for no credential."""
    return _STICKY_PREFIX + hashlib.sha256(credential.encode()).hexdigest() if credential else ""


def _actor_key(request) -> str:
    """Who is asking, known before any database read: the Authorization header (a token) or the session."""
    return sticky_key(request.headers.get("Authorization") or request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""))


def _mark_sticky(*keys: str) -> None:
    seconds = settings.CSM_REPLICA_STICKY_SECONDS
    if seconds:
        try:
            cache.set_many({key: 1 for key in keys if key}, seconds)
        except Exception:  # the cache is down: the write is done, only its stickiness is lost (logged)
            log.exception("cannot mark a client as having written: its next reads may lag")


def _recently_wrote(key: str) -> bool:
    if not key:
        return False
    try:
        return cache.get(key) is not None
    except Exception:  # the cache is down: read the primary, which is never behind
        log.exception("cannot read the read-your-own-writes marker: reading the primary")
        return True


class ReplicaRoutingMiddleware:
    """Lets the reads of a safe request go to a replica unless its client wrote within the sticky window;
    after a request that wrote (or could have: any unsafe method) the client is sticky to the primary."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        actor = _actor_key(request)
        safe = request.method in SAFE_METHODS
        state = _Routing(replica_allowed=safe and not _recently_wrote(actor))
        token = _routing.set(state)
        try:
            response = self.get_response(request)
        finally:
            _routing.reset(token)
        if state.wrote or not safe:
            # A sign-in cycles the session key: the new cookie is the same client.
            cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
            _mark_sticky(actor, sticky_key(cookie.value if cookie is not None else ""))
        return response
