"""Redis backend: sorted sets scored by last activity.

Keys (all share the ``{prefix}`` Cluster hash tag, so they live in one slot):

- ``{prefix}:entries``  member = entry's stored form, score = last touch
- ``{prefix}:users``    member = ``str(user.pk)``,   score = last touch (distinct users)
- ``{prefix}:visitors`` member = visitor's keyed hash, score = last touch (anonymous)
- ``{prefix}:sessions`` hash: a session's keyed hash -> its entries' members, one per line;
  ``{prefix}:session_times`` its last touch, by which it is trimmed (logging out)

History (``active_users.history``), under the same tag:

- ``{prefix}:history:minutes`` / ``:history:hours``  sorted sets of
  ``"start:entries:users:visitors"`` scored by start: per-minute samples and hourly peaks,
  trimmed by retention
- ``{prefix}:uniques:users:2026-11-22`` (and ``visitors``, and ``…:2026-11`` per month)
  HyperLogLogs of who was active that day or month, with TTLs

Counting is ``ZCOUNT`` (O(log N)); a page is ``ZREVRANGEBYSCORE … LIMIT`` (O(log N + page));
each write trims what expired with ``ZREMRANGEBYSCORE`` in the same script, so no cron and
no ``KEYS``/``SCAN`` are ever needed. Nothing outside these keys is read or written.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from datetime import date, timedelta
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.retry import Retry

from active_users.backends.base import (
    BaseBackend,
    Counts,
    Page,
    Presence,
    Sample,
    Uniques,
    day_of,
    decode_cursor,
    encode_cursor,
    is_redis_cache,
    month_starts,
)
from active_users.backends.lua import (
    REMOVE_SESSION_SCRIPT,
    SAMPLE_SCRIPT,
    TOUCH_SCRIPT,
    UNIQUES_SCRIPT,
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
        location: Any = cache.get("LOCATION", "redis://127.0.0.1:6379/0")
        if isinstance(location, str):
            location = location.split(",")
        url = str(next(iter(location))).strip()
        cache_options: dict[str, Any] = dict(cache.get("OPTIONS") or {})  # type: ignore[arg-type]
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
    )
    return url, options


DAY = 86400
# Presences per touch-script call in a flush (4 arguments each).
CHUNK = 2000


class RedisBackend(BaseBackend):
    def __init__(self) -> None:
        url, options = connection_settings()
        self.url, self.options = url, options
        self.client = self._client_class().from_url(url, **options)
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[aioredis.Redis, AsyncScript]
        ] = weakref.WeakKeyDictionary()
        tag = "{" + conf.KEY_PREFIX + "}"
        self.entries_key = f"{tag}:entries"
        self.users_key = f"{tag}:users"
        self.visitors_key = f"{tag}:visitors"
        self.flush_lock_key = f"{tag}:last_seen_lock"
        self.flushed_key = f"{tag}:last_seen_flushed"
        self.catch_up_lock_key = f"{tag}:last_seen_catch_up"
        self.minutes_key = f"{tag}:history:minutes"
        self.hours_key = f"{tag}:history:hours"
        self.uniques_prefix = f"{tag}:uniques"
        self.sessions_key = f"{tag}:sessions"
        self.session_times_key = f"{tag}:session_times"
        self._touch_script = self.client.register_script(TOUCH_SCRIPT)
        self._sample_script = self.client.register_script(SAMPLE_SCRIPT)
        self._uniques_script = self.client.register_script(UNIQUES_SCRIPT)
        self._remove_session_script = self.client.register_script(REMOVE_SESSION_SCRIPT)

    @staticmethod
    def _client_class(asynchronous: bool = False) -> Any:
        if conf.REDIS_CLUSTER:
            if asynchronous:
                from redis.asyncio.cluster import RedisCluster as AsyncCluster

                return AsyncCluster
            from redis.cluster import RedisCluster

            return RedisCluster
        return aioredis.Redis if asynchronous else redis.Redis

    def _async(self) -> tuple[aioredis.Redis, AsyncScript]:
        # asyncio connections cannot cross event loops: one client per running loop.
        loop = asyncio.get_running_loop()
        found = self._async_clients.get(loop)
        if found is None:
            client = self._client_class(asynchronous=True).from_url(self.url, **self.options)
            found = self._async_clients[loop] = (client, client.register_script(TOUCH_SCRIPT))
        return found

    @property
    def aclient(self) -> aioredis.Redis:
        """A client bound to the running event loop."""
        return self._async()[0]

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        found = self._async_clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].aclose()

    def _unique_key(self, kind: str, label: str) -> str:
        return f"{self.uniques_prefix}:{kind}:{label}"

    def _touch_calls(
        self, items: list[tuple[Presence, float]]
    ) -> list[tuple[list[str], list[Any]]]:
        """The touch script's calls for ``items``: one per day (a flush may straddle midnight)
        and per ``CHUNK`` presences, so that no call holds Redis for long."""
        by_day: dict[Any, list[tuple[Presence, float]]] = {}
        for presence, when in items:
            by_day.setdefault(day_of(when), []).append((presence, when))
        expire, retention = conf.KEY_EXPIRE, conf.users_retention
        kept = conf.HISTORY_DAY_RETENTION * DAY
        calls = []
        for day, group in by_day.items():
            keys = [
                self.entries_key, self.visitors_key, self.users_key,
                self._unique_key("users", day.label), self._unique_key("users", day.month_label),
                self._unique_key("visitors", day.label),
                self._unique_key("visitors", day.month_label),
                self.sessions_key, self.session_times_key,
            ]  # fmt: skip
            for first in range(0, len(group), CHUNK):
                chunk = group[first : first + CHUNK]
                now = max(when for _, when in chunk)
                args: list[Any] = [
                    f"({now - expire!r}", f"({now - retention!r}",
                    int(expire * 2 + 1), int(retention * 2 + 1), repr(now - conf.IDLE_AFTER),
                    repr(day.start) if conf.HISTORY else "",
                    int(day.end - now + kept), int(day.end - now + kept + 31 * DAY),
                ]  # fmt: skip
                for presence, when in chunk:
                    args += [repr(when), presence.member, presence.user_id, presence.session]
                calls.append((keys, args))
        return calls

    def touch(self, presence: Presence, now: float | None = None) -> bool:
        [(keys, args)] = self._touch_calls([(presence, time.time() if now is None else now)])
        return bool(self._touch_script(keys=keys, args=args, client=self.client))

    async def atouch(self, presence: Presence, now: float | None = None) -> bool:
        [(keys, args)] = self._touch_calls([(presence, time.time() if now is None else now)])
        client, script = self._async()
        return bool(await script(keys=keys, args=args, client=client))

    def touch_many(self, items: list[tuple[Presence, float]]) -> None:
        calls = self._touch_calls(items)
        if conf.REDIS_CLUSTER or len(calls) == 1:  # one slot: one node either way
            for keys, args in calls:
                self._touch_script(keys=keys, args=args, client=self.client)
            return
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            self._touch_script(keys=keys, args=args, client=pipe)
        pipe.execute()

    def remove_session(self, session: str) -> None:
        if session:
            self._remove_session_script(
                keys=[self.entries_key, self.sessions_key, self.session_times_key],
                args=[session],
                client=self.client,
            )

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
    def page_cursor(self, cursor: str) -> tuple[float, int]:
        """The (score, skip) of a page cursor, checked before any Redis call: a forged one
        is a ``BadRequest``, never a Redis error (that would open the circuit breaker)."""
        score, skip = decode_cursor(cursor, float, int)
        return score, skip

    def _page_args(self, limit: int, cursor: str | None, now: float | None) -> tuple[Any, ...]:
        top, skip = self.page_cursor(cursor) if cursor else ("+inf", 0)
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
        rows = cast(
            "list[tuple[bytes, float]]",
            await self.aclient.zrevrangebyscore(
                key, high, low, start=skip, num=count, withscores=True
            ),
        )
        return self._page_result(rows, limit, top, skip)

    def members(self, now: float | None = None) -> list[str]:
        rows: list[bytes] = self.client.zrevrangebyscore(
            self.entries_key, "+inf", f"({self.cutoff(now)!r}"
        )
        return [m.decode() for m in rows]

    async def amembers(self, now: float | None = None) -> list[str]:
        rows = cast(
            "list[bytes]",
            await self.aclient.zrevrangebyscore(self.entries_key, "+inf", f"({self.cutoff(now)!r}"),
        )
        return [m.decode() for m in rows]

    def remove(self, presence: Presence) -> None:
        key = self.visitors_key if presence.anonymous else self.entries_key
        self.client.zrem(key, presence.member)

    async def aremove(self, presence: Presence) -> None:
        key = self.visitors_key if presence.anonymous else self.entries_key
        await self.aclient.zrem(key, presence.member)

    @property
    def all_keys(self) -> tuple[str, ...]:
        return (
            self.entries_key, self.users_key, self.visitors_key,
            self.flush_lock_key, self.flushed_key, self.sessions_key, self.session_times_key,
            self.catch_up_lock_key,
        )  # fmt: skip

    def clear(self) -> None:
        self.client.delete(*self.all_keys)

    async def aclear(self) -> None:
        await self.aclient.delete(*self.all_keys)

    def remove_user(self, user_id: str) -> None:
        # Entries are found by reading the set: a rare operation (deleting a user), never
        # on a request or count path.
        key_class = conf.KEY_CLASS
        doomed = []
        for member, _ in self.client.zscan_iter(self.entries_key, count=1000):
            try:
                if getattr(key_class.load(member), "user_id", None) == user_id:
                    doomed.append(member)
            except (ValueError, TypeError):
                continue
        # The session index: each of the user's sessions maps to the user's members only.
        gone = {m.decode() if isinstance(m, bytes) else m for m in doomed}
        sessions = [
            session
            for session, members in self.client.hscan_iter(self.sessions_key, count=1000)
            if gone.intersection(members.decode().split("\n"))
        ]
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self.users_key, user_id)
        if doomed:
            pipe.zrem(self.entries_key, *doomed)
        if sessions:
            pipe.hdel(self.sessions_key, *sessions)
            pipe.zrem(self.session_times_key, *sessions)
        pipe.execute()

    def seen(self, user_ids: list[str]) -> dict[str, float]:
        if not user_ids:
            return {}
        scores = self.client.zmscore(self.users_key, user_ids)
        return {uid: s for uid, s in zip(user_ids, scores) if s is not None}

    def seen_between(
        self, since: float, until: float, limit: int, cursor: str | None = None
    ) -> tuple[list[tuple[str, float]], str | None]:
        low, skip = decode_cursor(cursor, float, int) if cursor else (since, 0)
        low_arg = repr(low) if cursor else f"({since!r}"
        rows = self.client.zrangebyscore(
            self.users_key, low_arg, repr(until), start=skip, num=limit, withscores=True
        )
        found = [(m.decode(), s) for m, s in rows]
        if len(found) < limit:
            return found, None
        last = found[-1][1]
        same = sum(1 for _, s in found if s == last) + (skip if cursor and last == low else 0)
        return found, encode_cursor(last, same)

    def claim_flush(self, hold: float, now: float | None = None) -> float | None:
        if not self.client.set(self.flush_lock_key, "1", nx=True, px=max(1, int(hold * 1000))):
            return None
        flushed = self.client.get(self.flushed_key)
        return float(flushed) if flushed else 0.0

    def flush_done(self, until: float) -> None:
        self.client.set(self.flushed_key, repr(until), ex=int(conf.users_retention * 2 + 1))

    def claim_catch_up(self, hold: float, now: float | None = None) -> float | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.catch_up_lock_key, "1", nx=True, px=max(1, int(hold * 1000)))
        pipe.get(self.flushed_key)
        claimed, flushed = pipe.execute()
        if not claimed:
            return None
        return float(flushed) if flushed else 0.0

    def clear_expired(self, now: float | None = None) -> int:
        pipe = self.client.pipeline(transaction=False)
        stale = f"({self.cutoff(now)!r}"
        pipe.zremrangebyscore(self.entries_key, "-inf", stale)
        pipe.zremrangebyscore(self.visitors_key, "-inf", stale)
        now = time.time() if now is None else now
        pipe.zremrangebyscore(self.users_key, "-inf", f"({now - conf.users_retention!r}")
        return sum(pipe.execute())

    # History
    def claim_minute(self, minute: int) -> bool:
        claim = f"{self.minutes_key}:claim:{minute}"
        return bool(self.client.set(claim, "1", nx=True, ex=180))

    def record_sample(self, sample: Sample) -> None:
        hour = sample.start - sample.start % 3600
        self._sample_script(
            keys=[self.minutes_key, self.hours_key],
            args=[
                sample.start, hour, sample.entries, sample.users, sample.visitors,
                sample.start - conf.HISTORY_MINUTE_RETENTION * 3600,
                hour - conf.HISTORY_DAY_RETENTION * DAY,
                (conf.HISTORY_DAY_RETENTION + 1) * DAY,
            ],
            client=self.client,
        )  # fmt: skip

    def samples(self, hourly: bool, since: int, until: int) -> list[Sample]:
        key = self.hours_key if hourly else self.minutes_key
        found = []
        for member in self.client.zrangebyscore(key, since, until):
            try:
                found.append(Sample(*map(int, member.split(b":"))))
            except (TypeError, ValueError):
                continue
        return found

    def uniques(self, today: date, days: int, months: int, windows: list[int]) -> Uniques:
        day_list = [today - timedelta(days=n) for n in range(max([days, *windows]) - 1, -1, -1)]
        month_list = month_starts(today, months)
        groups: list[list[str]] = []
        for kind in ("users", "visitors"):
            for day in day_list[-days:] if days else []:
                groups.append([self._unique_key(kind, day.isoformat())])
            for month in month_list:
                groups.append([self._unique_key(kind, month.isoformat()[:7])])
            for window in windows:
                groups.append([self._unique_key(kind, d.isoformat()) for d in day_list[-window:]])
        found = self._uniques_script(
            keys=[key for group in groups for key in group],
            args=[len(group) for group in groups],
            client=self.client,
        )
        half = len(found) // 2
        users, visitors = found[:half], found[half:]
        shown = day_list[-days:] if days else []
        result = Uniques()
        result.days = [(d, users[i], visitors[i]) for i, d in enumerate(shown)]
        offset = len(shown)
        result.months = [
            (m, users[offset + i], visitors[offset + i]) for i, m in enumerate(month_list)
        ]
        offset += len(month_list)
        result.windows = {
            w: (users[offset + i], visitors[offset + i]) for i, w in enumerate(windows)
        }
        return result

    def clear_history(self) -> None:
        today = day_of(time.time()).date
        kept = conf.HISTORY_DAY_RETENTION + 2
        labels = {(today - timedelta(days=n)).isoformat() for n in range(-2, kept)}
        labels |= {label[:7] for label in labels}
        keys = [self._unique_key(k, label) for k in ("users", "visitors") for label in labels]
        self.client.delete(self.minutes_key, self.hours_key, *keys)
