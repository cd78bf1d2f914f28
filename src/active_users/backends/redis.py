"""Redis backend: sorted sets scored by last activity.

Keys (all share the ``{prefix}`` Cluster hash tag, so they live in one slot; with
``REDIS_SHARDS`` > 1 the first five are split into shards, each under a tag of its own, see
``backends/shards.py``):

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
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.retry import Retry

from active_users.backends import shards
from active_users.backends.base import (
    BaseBackend,
    Counts,
    Day,
    Page,
    Presence,
    Sample,
    Uniques,
    day_of,
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


def async_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for an asyncio client: its own ``Retry`` class (redis-py warns when it is
    given the sync one, and converts it)."""
    return {**options, "retry": AsyncRetry(NoBackoff(), 0)}


DAY = 86400
# Presences per touch-script call in a flush (4 arguments each): 500 first touches cost the
# server ~16 ms of CPU (docs/scaling.md), so that one call stays well inside REDIS_TIMEOUT
# (0.25 s) on a busy server. A pipeline reads each call's reply within the timeout.
CHUNK = 500


class RedisBackend(BaseBackend):
    def __init__(self) -> None:
        url, options = connection_settings()
        self.url, self.options = url, options
        # Connected on first use: a Cluster client connects when it is made, and a Redis
        # that is down at start-up must not stop the site from starting.
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[aioredis.Redis, AsyncScript]
        ] = weakref.WeakKeyDictionary()
        tag = "{" + conf.KEY_PREFIX + "}"
        self.shards = conf.REDIS_SHARDS
        self.live = [shards.live_keys(t) for t in shards.tags(conf.KEY_PREFIX, self.shards)]
        # The first shard's (every key, unsharded).
        self.entries_key, self.users_key, self.visitors_key = self.live[0][:3]
        self.sessions_key, self.session_times_key = self.live[0][3:]
        self.flush_lock_key = f"{tag}:last_seen_lock"
        self.flushed_key = f"{tag}:last_seen_flushed"
        self.catch_up_lock_key = f"{tag}:last_seen_catch_up"
        self.minutes_key = f"{tag}:history:minutes"
        self.hours_key = f"{tag}:history:hours"
        self.uniques_prefix = f"{tag}:uniques"

    @property
    def client(self) -> Any:
        """The sync client, made on first use (again after a failed attempt)."""
        if self._client is None:
            self._client = self._client_class().from_url(self.url, **self.options)
        return self._client

    def _script(self, source: str) -> Any:
        found = self._scripts.get(source)
        if found is None:
            found = self._scripts[source] = self.client.register_script(source)
        return found

    @property
    def _touch_script(self) -> Any:
        return self._script(TOUCH_SCRIPT)

    @property
    def _sample_script(self) -> Any:
        return self._script(SAMPLE_SCRIPT)

    @property
    def _uniques_script(self) -> Any:
        return self._script(UNIQUES_SCRIPT)

    @property
    def _remove_session_script(self) -> Any:
        return self._script(REMOVE_SESSION_SCRIPT)

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
            client = self._client_class(asynchronous=True).from_url(
                self.url, **async_options(self.options)
            )
            found = self._async_clients[loop] = (client, client.register_script(TOUCH_SCRIPT))
        return found

    @property
    def aclient(self) -> aioredis.Redis:
        """A client bound to the running event loop."""
        return self._async()[0]

    def close(self) -> None:
        client, self._client = self._client, None
        self._scripts.clear()
        if client is None:
            return
        if isinstance(client, redis.RedisCluster):
            # Closing a Cluster client leaves its nodes' pools open (a multi-node pipeline
            # used them: sharded keys span masters).
            client.disconnect_connection_pools()  # type: ignore[no-untyped-call]
        client.close()

    async def aclose(self) -> None:
        found = self._async_clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].aclose()

    def _unique_key(self, kind: str, label: str) -> str:
        return f"{self.uniques_prefix}:{kind}:{label}"

    def _shard(self, presence: Presence) -> int:
        return shards.shard_of(presence.user_id or presence.member, self.shards)

    def _touch_calls(
        self, items: list[tuple[Presence, float]]
    ) -> list[tuple[list[str], list[Any], Day]]:
        """The touch script's calls for ``items``: one per day (a flush may straddle
        midnight), per shard and per ``CHUNK`` presences, so that no call holds Redis for
        long."""
        by_call: dict[tuple[Day, int], list[tuple[Presence, float]]] = {}
        for presence, when in items:
            by_call.setdefault((day_of(when), self._shard(presence)), []).append((presence, when))
        expire, retention = conf.KEY_EXPIRE, conf.users_retention
        kept = conf.HISTORY_DAY_RETENTION * DAY
        calls = []
        for (day, shard), group in by_call.items():
            live = self.live[shard]
            keys = [live.entries, live.visitors, live.users, live.sessions, live.session_times]
            if self.shards == 1:  # the uniques share the tag: the script adds to them
                keys += [
                    self._unique_key("users", day.label),
                    self._unique_key("users", day.month_label),
                    self._unique_key("visitors", day.label),
                    self._unique_key("visitors", day.month_label),
                ]
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
                calls.append((keys, args, day))
        return calls

    def _unique_writes(
        self, calls: list[tuple[list[str], list[Any], Day]], results: list[Any]
    ) -> list[tuple[str, list[Any], int]]:
        """Sharded, the people a touch saw first today go to the day's and month's
        HyperLogLogs under ``{prefix}`` in a second round trip: once per person and day."""
        writes = []
        for (_, args, day), (_, users, visitors) in zip(calls, results):
            for kind, found in (("users", users), ("visitors", visitors)):
                if found:
                    writes.append((self._unique_key(kind, day.label), found, args[6]))
                    writes.append((self._unique_key(kind, day.month_label), found, args[7]))
        return writes

    def _write_uniques(
        self, calls: list[tuple[list[str], list[Any], Day]], results: list[Any]
    ) -> None:
        writes = self._unique_writes(calls, results)
        if writes:
            pipe = self.client.pipeline(transaction=False)
            for key, found, ttl in writes:
                pipe.pfadd(key, *found)
                pipe.expire(key, ttl)
            pipe.execute()

    def _run(self, script: Any, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run a script once per call, in one pipeline per node."""
        if len(calls) == 1:
            [(keys, args)] = calls
            return [script(keys=keys, args=args, client=self.client)]
        groups: dict[Any, list[int]] = {}
        for n, (keys, _) in enumerate(calls):
            # A Cluster pipeline refuses scripts: each node gets a plain pipeline of its own.
            node = self.client.get_node_from_key(keys[0]) if conf.REDIS_CLUSTER else None
            groups.setdefault(node, []).append(n)
        results: list[Any] = [None] * len(calls)
        for node, numbers in groups.items():
            pipe = (node.redis_connection if node else self.client).pipeline(transaction=False)
            for n in numbers:
                script(keys=calls[n][0], args=calls[n][1], client=pipe)
            for n, result in zip(numbers, pipe.execute(raise_on_error=False)):
                results[n] = result
        for n, result in enumerate(results):
            if isinstance(result, redis.ResponseError):  # a slot moved: the client follows
                results[n] = script(keys=calls[n][0], args=calls[n][1], client=self.client)
            elif isinstance(result, Exception):
                raise result
        return results

    def touch(self, presence: Presence, now: float | None = None) -> bool:
        calls = self._touch_calls([(presence, time.time() if now is None else now)])
        [(keys, args, _)] = calls
        result = self._touch_script(keys=keys, args=args, client=self.client)
        self._write_uniques(calls, [result])
        return bool(result[0])

    async def atouch(self, presence: Presence, now: float | None = None) -> bool:
        calls = self._touch_calls([(presence, time.time() if now is None else now)])
        [(keys, args, _)] = calls
        client, script = self._async()
        result = await script(keys=keys, args=args, client=client)
        writes = self._unique_writes(calls, [result])
        if writes:
            pipe = client.pipeline(transaction=False)
            for key, found, ttl in writes:
                pipe.pfadd(key, *found)
                pipe.expire(key, ttl)
            await pipe.execute()
        return bool(result[0])

    def touch_many(self, items: list[tuple[Presence, float]], min_step: float = 0.0) -> None:
        calls = self._touch_calls(items)
        if calls:
            results = self._run(self._touch_script, [(keys, args) for keys, args, _ in calls])
            self._write_uniques(calls, results)

    def remove_session(self, session: str) -> None:
        # The session's shard is its user's, which a logout's session hash does not name:
        # each shard is asked (one pipeline; one call unsharded).
        if session:
            calls = [([k.entries, k.sessions, k.session_times], [session]) for k in self.live]
            self._run(self._remove_session_script, calls)

    def _count_commands(self, pipe: Any, now: float | None, kinds: int = 3) -> None:
        low = f"({self.cutoff(now)!r}"
        for live in self.live:
            for key in live[:kinds]:
                pipe.zcount(key, low, "+inf")

    def _counts_of(self, found: list[int]) -> Counts:
        return Counts(sum(found[0::3]), sum(found[1::3]), sum(found[2::3]))

    def counts(self, now: float | None = None) -> Counts:
        pipe = self.client.pipeline(transaction=False)
        self._count_commands(pipe, now)
        return self._counts_of(pipe.execute())

    async def acounts(self, now: float | None = None) -> Counts:
        pipe = self.aclient.pipeline(transaction=False)
        self._count_commands(pipe, now)
        return self._counts_of(await pipe.execute())

    def count(self, now: float | None = None) -> int:
        if self.shards == 1:
            return int(self.client.zcount(self.entries_key, f"({self.cutoff(now)!r}", "+inf"))
        pipe = self.client.pipeline(transaction=False)
        self._count_commands(pipe, now, kinds=1)
        return sum(pipe.execute())

    async def acount(self, now: float | None = None) -> int:
        if self.shards == 1:
            low = f"({self.cutoff(now)!r}"
            return int(await self.aclient.zcount(self.entries_key, low, "+inf"))
        pipe = self.aclient.pipeline(transaction=False)
        self._count_commands(pipe, now, kinds=1)
        return sum(await pipe.execute())

    # Paging: a merge of the shards' entries, newest first (``shards.merge``); unsharded,
    # one ZREVRANGEBYSCORE … LIMIT and the cursor of every release so far.
    def page_cursor(self, cursor: str) -> tuple[float, int, int]:
        """The (score, shard, skip) of a page cursor, checked before any Redis call: a
        forged one is a ``BadRequest``, never a Redis error (that would open the circuit
        breaker)."""
        return shards.decode_position(cursor, self.shards)

    def _page_steps(self, limit: int, cursor: str | None) -> Any:
        start = self.page_cursor(cursor) if cursor else None
        return shards.merge(self.shards, limit, start, True, "+inf")

    def _page_reads(self, pipe: Any, reads: list[shards.Read], now: float | None) -> None:
        low = f"({self.cutoff(now)!r}"
        for shard, high, skip, num in reads:
            entries = self.live[shard].entries
            pipe.zrevrangebyscore(entries, high, low, start=skip, num=num, withscores=True)

    def _page_of(self, found: tuple[shards.Rows, Any]) -> Page:
        rows, after = found
        page = Page(items=[(m.decode(), s) for m, s in rows])
        if after is not None:
            page.next_cursor = shards.encode_position(after[0], after[1], after[2], self.shards)
        return page

    def page(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        def read(reads: list[shards.Read]) -> list[shards.Rows]:
            pipe = self.client.pipeline(transaction=False)
            self._page_reads(pipe, reads, now)
            return list(pipe.execute())

        return self._page_of(shards.drive(self._page_steps(limit, cursor), read))

    async def apage(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        async def read(reads: list[shards.Read]) -> list[shards.Rows]:
            pipe = self.aclient.pipeline(transaction=False)
            self._page_reads(pipe, reads, now)
            return list(await pipe.execute())

        return self._page_of(await shards.adrive(self._page_steps(limit, cursor), read))

    def _members_of(self, found: list[list[tuple[bytes, float]]]) -> list[str]:
        rows = [(-score, shard, member) for shard, got in enumerate(found) for member, score in got]
        rows.sort(key=lambda row: row[:2])  # stable: each shard's own order at equal scores
        return [member.decode() for _, _, member in rows]

    def _members_commands(self, pipe: Any, now: float | None) -> None:
        low = f"({self.cutoff(now)!r}"
        for live in self.live:
            pipe.zrevrangebyscore(live.entries, "+inf", low, withscores=True)

    def members(self, now: float | None = None) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        self._members_commands(pipe, now)
        return self._members_of(pipe.execute())

    async def amembers(self, now: float | None = None) -> list[str]:
        pipe = self.aclient.pipeline(transaction=False)
        self._members_commands(pipe, now)
        return self._members_of(await pipe.execute())

    def _remove_key(self, presence: Presence) -> str:
        live = self.live[self._shard(presence)]
        return live.visitors if presence.anonymous else live.entries

    def remove(self, presence: Presence) -> None:
        self.client.zrem(self._remove_key(presence), presence.member)

    async def aremove(self, presence: Presence) -> None:
        await self.aclient.zrem(self._remove_key(presence), presence.member)

    @property
    def all_keys(self) -> tuple[str, ...]:
        return (
            *(key for live in self.live for key in live),
            self.flush_lock_key, self.flushed_key, self.catch_up_lock_key,
        )  # fmt: skip

    def clear(self) -> None:
        self.client.delete(*self.all_keys)

    async def aclear(self) -> None:
        await self.aclient.delete(*self.all_keys)

    def remove_user(self, user_id: str) -> None:
        # Entries are found by reading the user's shard: a rare operation (deleting a
        # user), never on a request or count path.
        live = self.live[shards.shard_of(user_id, self.shards)]
        key_class = conf.KEY_CLASS
        doomed = []
        for member, _ in self.client.zscan_iter(live.entries, count=1000):
            try:
                if getattr(key_class.load(member), "user_id", None) == user_id:
                    doomed.append(member)
            except (ValueError, TypeError):
                continue
        # The session index: each of the user's sessions maps to the user's members only.
        gone = {m.decode() if isinstance(m, bytes) else m for m in doomed}
        sessions = [
            session
            for session, members in self.client.hscan_iter(live.sessions, count=1000)
            if gone.intersection(members.decode().split("\n"))
        ]
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(live.users, user_id)
        if doomed:
            pipe.zrem(live.entries, *doomed)
        if sessions:
            pipe.hdel(live.sessions, *sessions)
            pipe.zrem(live.session_times, *sessions)
        pipe.execute()

    def seen(self, user_ids: list[str]) -> dict[str, float]:
        by_shard: dict[int, list[str]] = {}
        for user_id in user_ids:
            by_shard.setdefault(shards.shard_of(user_id, self.shards), []).append(user_id)
        if not by_shard:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for shard, ids in by_shard.items():
            pipe.zmscore(self.live[shard].users, ids)
        found = {}
        for ids, scores in zip(by_shard.values(), pipe.execute()):
            found.update({uid: s for uid, s in zip(ids, scores) if s is not None})
        return found

    def seen_between(
        self, since: float, until: float, limit: int, cursor: str | None = None
    ) -> tuple[list[tuple[str, float]], str | None]:
        start = shards.decode_position(cursor, self.shards) if cursor else None
        steps = shards.merge(self.shards, limit, start, False, f"({since!r}")

        def read(reads: list[shards.Read]) -> list[shards.Rows]:
            pipe = self.client.pipeline(transaction=False)
            for shard, low, skip, num in reads:
                users = self.live[shard].users
                pipe.zrangebyscore(users, low, repr(until), start=skip, num=num, withscores=True)
            return list(pipe.execute())

        rows, after = shards.drive(steps, read)
        found = [(m.decode(), s) for m, s in rows]
        return found, shards.encode_position(
            after[0], after[1], after[2], self.shards
        ) if after else None

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
        now = time.time() if now is None else now
        for live in self.live:
            pipe.zremrangebyscore(live.entries, "-inf", stale)
            pipe.zremrangebyscore(live.visitors, "-inf", stale)
            pipe.zremrangebyscore(live.users, "-inf", f"({now - conf.users_retention!r}")
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
