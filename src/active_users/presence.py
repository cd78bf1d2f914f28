"""Presence in rooms: who is connected to a page, a document, a chat, right now.

Kept in Redis (``ACTIVE_USERS_REDIS_URL`` or the default cache's Redis, whatever the active
users backend is), one sorted-set entry per connection, so every server process sees the
same rooms. Each room's keys share a hash tag of their own (rooms spread over a Cluster):

- ``{prefix:room:<hash>}:conns``    member = ``person \\n connection``, score = deadline
- ``{prefix:room:<hash>}:people``   member = person, score = latest deadline (or, after their
  last connection closed, the end of the grace period)
- ``{prefix:room:<hash>}:open``     hash: person -> open connections
- ``{prefix:room:<hash>}:info``     hash: person -> JSON shown to the room

A person is ``u:<pk>`` for a user (one person whatever the number of tabs) and ``a:<id>``
for an anonymous connection. Every change is one Lua script (one round trip) that first
sweeps the connections whose heartbeat stopped and the people whose grace period ended,
and returns who joined and who left. The consumers (``consumers.py``) announce that to the
room through the channel layer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from django.core.signals import setting_changed
from django.dispatch import Signal, receiver

from active_users.backends.redis import RedisBackend, async_options, connection_settings
from active_users.conf import conf

__all__ = [
    "Change",
    "apresent_count",
    "apresent_users",
    "present_count",
    "present_users",
    "user_joined_room",
    "user_left_room",
]

#: Sent when a person's first connection to a room opens: ``room``, ``person``, ``info``.
user_joined_room = Signal()
#: Sent when a person left a room (last connection closed and grace over, or timed out).
user_left_room = Signal()

MAX_ROOM_LENGTH = 200

# KEYS: conns, people, open, info. ARGV: op (join/leave/sweep), now, deadline, grace end,
# TTL, connection, person, info JSON. Returns {joined, present, left person, its info, ...}.
PRESENCE_SCRIPT = """
local now = tonumber(ARGV[2])
for _, conn in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])) do
  redis.call('ZREM', KEYS[1], conn)
  local person = string.match(conn, '^(.-)\\n')
  if person and redis.call('HINCRBY', KEYS[3], person, -1) <= 0 then
    redis.call('HDEL', KEYS[3], person)
  end
end
local result = {0, 0}
for _, person in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])) do
  if not redis.call('HGET', KEYS[3], person) then
    redis.call('ZREM', KEYS[2], person)
    table.insert(result, person)
    table.insert(result, redis.call('HGET', KEYS[4], person) or '{}')
    redis.call('HDEL', KEYS[4], person)
  end
end
local conn = ARGV[7] .. '\\n' .. ARGV[6]
if ARGV[1] == 'join' then
  if redis.call('ZADD', KEYS[1], ARGV[3], conn) == 1 then
    redis.call('HINCRBY', KEYS[3], ARGV[7], 1)
  end
  if not redis.call('ZSCORE', KEYS[2], ARGV[7]) then result[1] = 1 end
  redis.call('ZADD', KEYS[2], 'GT', ARGV[3], ARGV[7])
  redis.call('HSET', KEYS[4], ARGV[7], ARGV[8])
elseif ARGV[1] == 'leave' then
  if redis.call('ZREM', KEYS[1], conn) == 1 then
    if redis.call('HINCRBY', KEYS[3], ARGV[7], -1) <= 0 then
      redis.call('HDEL', KEYS[3], ARGV[7])
      redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
    end
  end
end
result[2] = redis.call('ZCOUNT', KEYS[2], ARGV[2], '+inf')
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return result
"""


# Erasing a person from one room (KEYS as above; ARGV: person). Returns {present, info
# JSON or false, connection, ...}: the room's count after, what the room was shown of the
# person, and the channel names of the person's connections.
ERASE_SCRIPT = """
local prefix = ARGV[1] .. '\\n'
local result = {0, redis.call('HGET', KEYS[4], ARGV[1]) or false}
for _, conn in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(conn, 1, #prefix) == prefix then
    redis.call('ZREM', KEYS[1], conn)
    table.insert(result, string.sub(conn, #prefix + 1))
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
result[1] = redis.call('ZCARD', KEYS[2])
return result
"""


@dataclass(slots=True)
class Erased:
    """A person erased from a room: the room's count after, what the room was shown of
    them, and the channel names of their open connections (told to close)."""

    present: int
    info: dict[str, Any]
    channels: list[str]


@dataclass(slots=True)
class Change:
    """What one presence operation did: whether the person joined (was not present), how
    many people are present now, and who left (``(person, info)`` pairs)."""

    joined: bool = False
    present: int = 0
    left: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def room_tag(room: str) -> str:
    digest = hashlib.blake2b(room.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return "{" + f"{conf.KEY_PREFIX}:room:{digest}" + "}"


def group_name(room: str) -> str:
    """The channel-layer group of a room (group names allow only ASCII letters and digits,
    hyphens, underscores and periods)."""
    digest = hashlib.blake2b(room.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    return f"active_users.presence.{digest}"


def user_person(pk: Any) -> str:
    """The presence person of a user: ``u:<pk>`` (a pk with a newline is hashed)."""
    text = str(pk)
    if "\n" in text:
        text = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return f"u:{text}"


def check_room(room: Any) -> str:
    if not isinstance(room, str) or not room or len(room) > MAX_ROOM_LENGTH:
        raise ValueError(f"room must be a string of 1 to {MAX_ROOM_LENGTH} characters")
    return room


# Presence runs beside WebSocket events, not in a request: a burst of a thousand
# connections closing at once waits for a pooled connection (up to POOL_SIZE per process and
# event loop) instead of failing, and connects and answers with a longer timeout than the
# request path's.
POOL_SIZE = 50
TIMEOUT = 2.0


class PresenceStore:
    def __init__(self) -> None:
        url, options = connection_settings()
        timeout = max(TIMEOUT, conf.REDIS_TIMEOUT)
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
        self.url, self.options = url, options
        self.client = RedisBackend._client_class().from_url(url, **options)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def _aclient(self) -> tuple[aioredis.Redis, Any]:
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            if conf.REDIS_CLUSTER:
                client = RedisBackend._client_class(asynchronous=True).from_url(
                    self.url, **async_options(self.options)
                )
            else:
                pool = aioredis.BlockingConnectionPool.from_url(
                    self.url,
                    max_connections=POOL_SIZE,
                    timeout=TIMEOUT * 2,
                    **async_options(self.options),
                )
                client = aioredis.Redis(connection_pool=pool)
            found = self._async[loop] = (client, client.register_script(PRESENCE_SCRIPT))
        return found

    async def aclose(self) -> None:
        """Close the running event loop's connections."""
        found = self._async.pop(asyncio.get_running_loop(), None)
        if found is None:
            return
        if isinstance(found[0], aioredis.Redis):  # the pool is ours: close it too
            await found[0].aclose(close_connection_pool=True)
        else:
            await found[0].aclose()

    @staticmethod
    def keys(room: str) -> list[str]:
        tag = room_tag(room)
        return [f"{tag}:conns", f"{tag}:people", f"{tag}:open", f"{tag}:info"]

    @staticmethod
    def _args(op: str, connection: str, person: str, info: dict[str, Any] | None) -> list[Any]:
        now = time.time()
        timeout, grace = conf.PRESENCE_TIMEOUT, conf.PRESENCE_GRACE
        return [
            op, repr(now), repr(now + timeout), repr(now + grace),
            int(timeout * 2 + grace + 60), connection, person,
            json.dumps(info or {}, ensure_ascii=False),
        ]  # fmt: skip

    @staticmethod
    def _change(raw: list[Any]) -> Change:
        left = []
        for i in range(2, len(raw), 2):
            person = raw[i].decode() if isinstance(raw[i], bytes) else str(raw[i])
            try:
                info = json.loads(raw[i + 1])
            except ValueError:
                info = {}
            left.append((person, info))
        return Change(joined=bool(raw[0]), present=int(raw[1]), left=left)

    async def arun(
        self, op: str, room: str, connection: str = "", person: str = "", info: Any = None
    ) -> Change:
        client, script = self._aclient()
        raw = await script(
            keys=self.keys(room), args=self._args(op, connection, person, info), client=client
        )
        return self._change(raw)

    def people(self, room: str) -> list[dict[str, Any]]:
        _, people, _, info = self.keys(room)
        pipe = self.client.pipeline(transaction=False)
        pipe.zrangebyscore(people, repr(time.time()), "+inf")
        pipe.hgetall(info)
        return self._people(*pipe.execute())

    async def apeople(self, room: str) -> list[dict[str, Any]]:
        _, people, _, info = self.keys(room)
        client, _ = self._aclient()
        pipe = client.pipeline(transaction=False)
        pipe.zrangebyscore(people, repr(time.time()), "+inf")
        pipe.hgetall(info)
        return self._people(*await pipe.execute())

    @staticmethod
    def _people(present: list[bytes], info: dict[bytes, bytes]) -> list[dict[str, Any]]:
        found = []
        for person in present:
            try:
                found.append(json.loads(info.get(person, b"{}")))
            except ValueError:
                found.append({})
        return found

    def count(self, room: str) -> int:
        return int(self.client.zcount(self.keys(room)[1], repr(time.time()), "+inf"))

    async def acount(self, room: str) -> int:
        client, _ = self._aclient()
        return int(await client.zcount(self.keys(room)[1], repr(time.time()), "+inf"))

    def erase(self, person: str) -> list[Erased]:
        """Remove ``person`` from every room (a scan of the rooms' keys: erasing a user is
        rare, never on a request or heartbeat path)."""
        script = self.client.register_script(ERASE_SCRIPT)
        pattern = "{" + f"{conf.KEY_PREFIX}:room:*" + "}:people"
        found = []
        for key in self.client.scan_iter(match=pattern, count=1000):
            people = key.decode()
            if self.client.zscore(people, person) is None:
                continue
            tag = people[: -len(":people")]
            keys = [f"{tag}:conns", people, f"{tag}:open", f"{tag}:info"]
            raw = script(keys=keys, args=[person], client=self.client)
            try:
                info = json.loads(raw[1]) if raw[1] else {}
            except ValueError:
                info = {}
            found.append(Erased(int(raw[0]), info, [c.decode() for c in raw[2:]]))
        return found

    async def aclaim(self, room: str, seconds: float) -> bool:
        """Whether this process may send the room's count now (once per ``seconds``)."""
        client, _ = self._aclient()
        key = room_tag(room) + ":count-sent"
        return bool(await client.set(key, "1", nx=True, px=max(1, int(seconds * 1000))))


_store: PresenceStore | None = None


def get_store() -> PresenceStore:
    global _store
    if _store is None:
        _store = PresenceStore()
    return _store


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    global _store
    if setting.startswith("ACTIVE_USERS_") or setting == "CACHES":
        _store = None


def present_users(room: str) -> list[dict[str, Any]]:
    """Who is in ``room``: each present person's info (``{"id", "name"}`` for users,
    ``{"anonymous": true}`` otherwise), one round trip."""
    return get_store().people(check_room(room))


def present_count(room: str) -> int:
    """How many people are in ``room`` (a user with three tabs counts once)."""
    return get_store().count(check_room(room))


async def apresent_users(room: str) -> list[dict[str, Any]]:
    return await get_store().apeople(check_room(room))


async def apresent_count(room: str) -> int:
    return await get_store().acount(check_room(room))
