"""The Redis cache backend: Django's own, reusing one redis-py client per server, plus
an expiring counter for the API's throttles (:mod:`config.throttles`).

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` around the
(reused) connection pool for every cache call, and redis-py's constructor registers
some hundred response callbacks each time: a third of a millisecond per throttled API
request, twice (the throttle reads and writes).  The client is thread-safe and Django
keeps one cache object per thread, so keeping the client is safe.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with one client per server, and a
    counter for the API's throttles."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _ReusingClient

    def incr_expiring(self, key: str, timeout: int, version=None) -> int:
        """Add one to the counter ``key`` and return it; the counter expires ``timeout``
        seconds after its last increment.  One round trip (``INCR`` and ``EXPIRE``,
        pipelined), and never a counter without an expiry."""
        key = self.make_and_validate_key(key, version=version)
        client = self._cache.get_client(key, write=True)
        with client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, timeout)
            count, _expiry_set = pipe.execute()
        return int(count)
