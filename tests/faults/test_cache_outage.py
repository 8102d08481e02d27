"""The shared cache is a cache: with its Redis unreachable (a port nothing listens on), every call answers
as an empty cache would, quickly, instead of raising (csm/cache.py). The fault suite shows the consequence
with real processes: reports are still accepted while Redis is down (test_faults.py)."""

import socket

import pytest
from django.core.cache.backends.redis import RedisCache

from csm.cache import TolerantRedisCache


@pytest.fixture
def unreachable_cache():
    with socket.socket() as sock:  # a free port, closed again: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}
    return (TolerantRedisCache(f"redis://127.0.0.1:{port}/0", options),
            RedisCache(f"redis://127.0.0.1:{port}/0", options))


def test_an_unreachable_cache_answers_as_an_empty_one(unreachable_cache, caplog):
    cache, plain = unreachable_cache
    with pytest.raises(Exception, match="Connection refused|Error 111"):
        plain.get("key")  # what the report PUT used to die of
    assert cache.get("key") is None and cache.get("key", "fallback") == "fallback"
    assert cache.get_many(["a", "b"]) == {} and cache.has_key("key") is False
    assert cache.add("key", 1) is True  # fails open: a rate limit or a once-only marker lets it through
    assert cache.set("key", 1) is None and cache.set_many({"a": 1}) == ["a"]
    assert cache.touch("key") is False and cache.delete("key") is False and cache.delete_many(["a"]) is None
    with pytest.raises(ValueError):
        cache.incr("counter")  # as for a missing key: callers add() it instead
    assert "cache unavailable" in caplog.text


def test_a_reachable_cache_is_an_ordinary_cache(settings):
    cache = TolerantRedisCache(settings.CACHES["default"]["LOCATION"], {})
    cache.set("csm:test:tolerant", 41)
    assert cache.incr("csm:test:tolerant") == 42
    assert cache.add("csm:test:tolerant", 0) is False
    cache.delete("csm:test:tolerant")


def test_one_redis_client_per_pool(settings):
    cache = TolerantRedisCache(settings.CACHES["default"]["LOCATION"], {})
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client() is client  # one server: reads and writes share the pool and its client
    cache.set("csm:test:client", 1)
    assert cache.get("csm:test:client") == 1 and cache._cache.get_client(write=True) is client
