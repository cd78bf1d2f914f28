"""Redis backend: sorted sets scored by last activity.

Keys (all share the ``{prefix}`` Cluster hash tag, so they live in one slot):

- ``{prefix}:entries``  member = entry's stored form, score = last touch
- ``{prefix}:users``    member = ``str(user.pk)``,   score = last touch (distinct users)
- ``{prefix}:visitors`` member = hashed session key,  score = last touch (anonymous)

Counting is ``ZCOUNT`` (O(log N)); a page is ``ZREVRANGEBYSCORE … LIMIT`` (O(log N + page));
each write trims what expired with ``ZREMRANGEBYSCORE`` in the same pipeline, so no cron and
no ``KEYS``/``SCAN`` are ever needed. Nothing outside these keys is read or written.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

from active_users.backends.base import (
    BaseBackend,
    Counts,
    Page,
    Presence,
    decode_cursor,
    encode_cursor,
    is_redis_cache,
)
from active_users.conf import conf


def connection_settings() -> tuple[str, dict[str, Any]]:
    """The URL and client options to use: ``ACTIVE_USERS_REDIS_URL``, else the default
    cache's, always with the package's own short timeouts and no retries."""
    url = conf.REDIS_URL
    options: dict[str, Any] = {}
    if not url:
        cache = settings.CACHES.get("default", {})
        if not is_redis_cache(cache):
            raise ImproperlyConfigured(
                "active_users: the Redis backend needs ACTIVE_USERS_REDIS_URL or a Redis "
                "default cache (django-redis or django.core.cache.backends.redis.RedisCache)."
            )
        location = cache.get("LOCATION", "redis://127.0.0.1:6379/0")
        if isinstance(location, str):
            location = location.split(",")
        url = str(next(iter(location))).strip()
        cache_options = dict(cache.get("OPTIONS", {}))
        options.update(cache_options.get("CONNECTION_POOL_KWARGS", {}))
        for name in ("password", "username", "db"):
            value = cache_options.get(name, cache_options.get(name.upper()))
            if value is not None:
                options[name] = value
        if "://" not in url:  # django-redis also accepts "host:port:db"
            host, _, rest = url.partition(":")
            port, _, db = rest.partition(":")
            url = f"redis://{host}:{port or 6379}/{db or 0}"
    timeout = conf.REDIS_TIMEOUT
    options.update(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )
    return url, options


class RedisBackend(BaseBackend):
    def __init__(self) -> None:
        url, options = connection_settings()
        self.url, self.options = url, options
        self.client = redis.Redis.from_url(url, **options)
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]
        self._async_clients = weakref.WeakKeyDictionary()
        tag = "{" + conf.KEY_PREFIX + "}"
        self.entries_key = f"{tag}:entries"
        self.users_key = f"{tag}:users"
        self.visitors_key = f"{tag}:visitors"

    @property
    def aclient(self) -> aioredis.Redis:
        """A client bound to the running event loop (asyncio connections cannot cross loops)."""
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = aioredis.Redis.from_url(self.url, **self.options)
            self._async_clients[loop] = client
        return client

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._async_clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def _touch_commands(self, pipe: Any, presence: Presence, now: float | None) -> None:
        now = time.time() if now is None else now
        stale = f"({self.cutoff(now)!r}"
        ttl = conf.KEY_EXPIRE * 2 + 1
        if presence.anonymous:
            keys = [(self.visitors_key, presence.member)]
        else:
            keys = [(self.entries_key, presence.member), (self.users_key, presence.user_id)]
        for key, member in keys:
            pipe.zadd(key, {member: now})
            pipe.zremrangebyscore(key, "-inf", stale)
            pipe.expire(key, ttl)

    def touch(self, presence: Presence, now: float | None = None) -> None:
        pipe = self.client.pipeline(transaction=False)
        self._touch_commands(pipe, presence, now)
        pipe.execute()

    async def atouch(self, presence: Presence, now: float | None = None) -> None:
        pipe = self.aclient.pipeline(transaction=False)
        self._touch_commands(pipe, presence, now)
        await pipe.execute()

    def _count_commands(self, pipe: Any, now: float | None) -> None:
        low = f"({self.cutoff(now)!r}"
        for key in (self.entries_key, self.users_key, self.visitors_key):
            pipe.zcount(key, low, "+inf")

    def counts(self, now: float | None = None) -> Counts:
        pipe = self.client.pipeline(transaction=False)
        self._count_commands(pipe, now)
        return Counts(*pipe.execute())

    async def acounts(self, now: float | None = None) -> Counts:
        pipe = self.aclient.pipeline(transaction=False)
        self._count_commands(pipe, now)
        return Counts(*await pipe.execute())

    def count(self, now: float | None = None) -> int:
        return int(self.client.zcount(self.entries_key, f"({self.cutoff(now)!r}", "+inf"))

    async def acount(self, now: float | None = None) -> int:
        return int(await self.aclient.zcount(self.entries_key, f"({self.cutoff(now)!r}", "+inf"))

    # Paging: the cursor is (score of the last item, how many items with exactly that score
    # were already given). Items with equal scores come in a fixed (lexical) order, so
    # skipping that many continues where the last page stopped.
    def _page_args(self, limit: int, cursor: str | None, now: float | None) -> tuple[Any, ...]:
        top, skip = decode_cursor(cursor, float, int) if cursor else ("+inf", 0)
        low = f"({self.cutoff(now)!r}"
        return self.entries_key, repr(top) if cursor else top, low, skip, limit + 1, top

    def _page_result(
        self, rows: list[tuple[bytes, float]], limit: int, top: Any, skip: int
    ) -> Page:
        page = Page(items=[(m.decode(), s) for m, s in rows[:limit]])
        if len(rows) > limit and page.items:
            last = page.items[-1][1]
            same = sum(1 for _, s in page.items if s == last)
            if last == top:
                same += skip
            page.next_cursor = encode_cursor(last, same)
        return page

    def page(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        key, high, low, skip, count, top = self._page_args(limit, cursor, now)
        rows = self.client.zrevrangebyscore(key, high, low, start=skip, num=count, withscores=True)
        return self._page_result(rows, limit, top, skip)

    async def apage(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        key, high, low, skip, count, top = self._page_args(limit, cursor, now)
        rows = await self.aclient.zrevrangebyscore(
            key, high, low, start=skip, num=count, withscores=True
        )
        return self._page_result(rows, limit, top, skip)

    def members(self, now: float | None = None) -> list[str]:
        rows = self.client.zrevrangebyscore(self.entries_key, "+inf", f"({self.cutoff(now)!r}")
        return [m.decode() for m in rows]

    async def amembers(self, now: float | None = None) -> list[str]:
        rows = await self.aclient.zrevrangebyscore(
            self.entries_key, "+inf", f"({self.cutoff(now)!r}"
        )
        return [m.decode() for m in rows]

    def remove(self, presence: Presence) -> None:
        key = self.visitors_key if presence.anonymous else self.entries_key
        self.client.zrem(key, presence.member)

    async def aremove(self, presence: Presence) -> None:
        key = self.visitors_key if presence.anonymous else self.entries_key
        await self.aclient.zrem(key, presence.member)

    def clear(self) -> None:
        self.client.delete(self.entries_key, self.users_key, self.visitors_key)

    async def aclear(self) -> None:
        await self.aclient.delete(self.entries_key, self.users_key, self.visitors_key)

    def clear_expired(self, now: float | None = None) -> int:
        pipe = self.client.pipeline(transaction=False)
        stale = f"({self.cutoff(now)!r}"
        for key in (self.entries_key, self.users_key, self.visitors_key):
            pipe.zremrangebyscore(key, "-inf", stale)
        return sum(pipe.execute())
