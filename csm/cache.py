"""The shared cache (``CACHE_URL``, Redis) as what it is: a cache. When Redis is unreachable, the web app
and the workers keep working: a read is a miss, a write is dropped, and ``add`` answers "added" (rate
limits, de-duplication windows and "checkpoint due" markers fail open: at worst more work, never a lost
report). Each failure is logged (``csm.cache``, warning). Without it, a Redis outage — the same Redis is
usually the broker — turned every report PUT into a 500 (tests/faults/)."""

import functools
import logging

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def _tolerant(method, fallback):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RedisError as error:
            log.warning("cache unavailable (%s: %s); %s answered without it", type(error).__name__, error,
                        method.__name__)
            return fallback(*args, **kwargs)

    return call


def _no_counter(*args, **kwargs):
    raise ValueError("the cache is unavailable: no counter")  # incr's own answer for a missing key


class ReusedClientRedisCacheClient(RedisCacheClient):
    """Django's client builds a new ``redis.Redis`` (~200 response callbacks registered) for every cache
    call: 3-4 per report accepted. One per connection pool is enough: it holds no state of its own
    between commands (the pool hands out the connections) and is safe to share between threads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class TolerantRedisCache(RedisCache):
    """Django's RedisCache, answering as an empty cache while Redis is down (see the module docstring)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    get = _tolerant(RedisCache.get, lambda key, default=None, version=None: default)
    get_many = _tolerant(RedisCache.get_many, lambda *args, **kwargs: {})
    has_key = _tolerant(RedisCache.has_key, lambda *args, **kwargs: False)
    add = _tolerant(RedisCache.add, lambda *args, **kwargs: True)
    set = _tolerant(RedisCache.set, lambda *args, **kwargs: None)
    set_many = _tolerant(RedisCache.set_many, lambda data, *args, **kwargs: list(data))
    touch = _tolerant(RedisCache.touch, lambda *args, **kwargs: False)
    incr = _tolerant(RedisCache.incr, _no_counter)
    delete = _tolerant(RedisCache.delete, lambda *args, **kwargs: False)
    delete_many = _tolerant(RedisCache.delete_many, lambda *args, **kwargs: None)
