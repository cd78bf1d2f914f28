"""Sharding the Redis backend's live sets over a Redis Cluster (``ACTIVE_USERS_REDIS_SHARDS``).

With one shard every key sits under the ``{prefix}`` hash tag, the layout of every release
so far. With N shards, shard i's live sets (entries, users, visitors, sessions, session
times) sit under a hash tag of their own, ``{prefix/N:j}``, j the first suffix whose slot
(CRC16, as the Cluster computes it) falls in the i-th of N equal ranges of the 16,384 slots:
masters own slot ranges, so the shards spread over the masters whatever N and whatever the
prefix. A person is in one shard (a user by their id, a visitor by their hash), so their
touch stays one script call on one master. History, uniques and locks stay under
``{prefix}``. N is in the tag: after a change of N no key of the old layout is read (they
expire by their TTLs), so nobody is counted twice.

Reads that list (a page, the last-seen batches) merge the shards in one order: by score,
then by shard, then in each shard's own order at equal scores (lexical, Redis's). A
position in that order is ``(score, shard, skip)``: the last item given had this score and
came from this shard, which had given ``skip`` items at that score. Every shard's position
follows from it (a shard before ``shard`` gave all of that score, one after gave none), so
the cursor stays three numbers at any N.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from active_users.backends.base import decode_cursor, encode_cursor
from active_users.exceptions import BadRequest

SLOTS = 16384
MAX_SHARDS = 1024
MAX_SKIP = 2**31


class LiveKeys(NamedTuple):
    """One shard's keys."""

    entries: str
    users: str
    visitors: str
    sessions: str
    session_times: str


def live_keys(tag: str) -> LiveKeys:
    return LiveKeys(*(f"{tag}:{name}" for name in LiveKeys._fields))


@lru_cache(maxsize=16)
def tags(prefix: str, count: int) -> tuple[str, ...]:
    """The hash tag of each of ``count`` shards; ``({prefix},)`` for one."""
    if count == 1:
        return ("{" + prefix + "}",)
    # Imported here: the system checks read MAX_SHARDS on sites without redis-py.
    from redis.crc import key_slot

    found: dict[int, str] = {}
    suffix = 0
    while len(found) < count:  # ~N·ln N tries: a few ms at 1,024 shards
        tag = f"{{{prefix}/{count}:{suffix}}}"
        found.setdefault(key_slot(tag.encode()) * count // SLOTS, tag)
        suffix += 1
    return tuple(found[shard] for shard in range(count))


def shard_of(presence_key: str, count: int) -> int:
    """The shard of a person: ``presence_key`` is the user id, or the visitor's (or a
    user-less entry's) member. CRC32, so every process of the fleet agrees."""
    return zlib.crc32(presence_key.encode()) % count if count > 1 else 0


# Cursors: one place encodes and validates them.
def encode_position(score: float, shard: int, skip: int, count: int) -> str:
    if count == 1:  # the unsharded cursor, as before sharding
        return encode_cursor(score, skip)
    return encode_cursor(score, shard, skip)


def decode_position(cursor: str, count: int) -> tuple[float, int, int]:
    """``(score, shard, skip)`` of a cursor given out by :func:`encode_position` for
    ``count`` shards; ``BadRequest`` (a ``ValueError``) if it is not one. ``decode_cursor``
    checks the shape, the length and that numbers are finite; this, the shard."""
    if count == 1:
        score, skip = decode_cursor(cursor, float, int)
        shard = 0
    else:
        score, shard, skip = decode_cursor(cursor, float, int, int)
    if not (math.isfinite(score) and 0 <= shard < count and 0 <= skip < MAX_SKIP):
        raise BadRequest("cursor", "not one this server gave out")
    return score, shard, skip


@dataclass(slots=True)
class Position:
    """Where a shard's next read starts: after ``skip`` items at ``score`` (or below
    ``score`` when ``open``); ``score`` None is the far end."""

    score: float | None = None
    open: bool = False
    skip: int = 0

    def after(self, score: float) -> None:
        if score == self.score and not self.open:
            self.skip += 1
        else:
            self.score, self.open, self.skip = score, False, 1


# A read the merge needs: shard, the bound it starts from (a ZRANGEBYSCORE argument), the
# items to skip there, how many to read.
Read = tuple[int, str, int, int]
Rows = list[tuple[bytes, float]]


def merge(
    count: int, limit: int, start: tuple[float, int, int] | None, descending: bool, first: str
) -> Generator[list[Read], list[Rows], tuple[Rows, tuple[float, int, int] | None]]:
    """Up to ``limit`` items of ``count`` shards, in one order, after ``start``; and the
    position after the last one when more follow.

    A generator: it yields the reads it needs (one per shard at first, then only for a
    shard whose read items all went to the page) and is sent their rows, so one driver runs
    it over a sync and another over an async pipeline. ``first`` is the bound when there is
    no ``start`` (``+inf`` newest first, ``(since`` oldest first). Each shard is read
    ~2·limit/N items at a time, doubling, so a page reads O(page + N) items.
    """
    fetch = [Position() for _ in range(count)]
    taken = [Position() for _ in range(count)]
    if start is not None:
        score, at, skip = start
        for shard in range(count):
            pos = (
                Position(score, True, 0) if shard < at
                else Position(score, False, skip if shard == at else 0)
            )  # fmt: skip
            fetch[shard] = pos
            taken[shard] = Position(pos.score, pos.open, pos.skip)
    size = [limit + 1 if count == 1 else min(limit + 1, max(8, 2 * (limit + 1) // count + 1))]
    sizes = size * count
    buffers: list[deque[tuple[bytes, float]]] = [deque() for _ in range(count)]
    done = [False] * count
    heap: list[tuple[float, int]] = []

    def bound(pos: Position) -> str:
        if pos.score is None:
            return first
        return f"({pos.score!r}" if pos.open else repr(pos.score)

    def sort_key(score: float, shard: int) -> tuple[float, int]:
        return (-score if descending else score, shard)

    wanted = list(range(count))
    found: Rows = []
    after: tuple[float, int, int] | None = None
    while True:
        if wanted:
            reads = [(s, bound(fetch[s]), fetch[s].skip, sizes[s]) for s in wanted]
            results = yield reads
            for (shard, _, _, asked), rows in zip(reads, results):
                buffers[shard].extend(rows)
                done[shard] = len(rows) < asked
                for _, score in rows:
                    fetch[shard].after(score)
                sizes[shard] = min(limit + 1, sizes[shard] * 2)
                if rows:
                    heapq.heappush(heap, sort_key(rows[0][1], shard))
            wanted = []
        if not heap:
            return found, None
        _, shard = heapq.heappop(heap)
        member, score = buffers[shard].popleft()
        if len(found) == limit:  # one more exists: the page ends before it
            return found, after
        found.append((member, score))
        taken[shard].after(score)
        after = (score, shard, taken[shard].skip)
        if buffers[shard]:
            heapq.heappush(heap, sort_key(buffers[shard][0][1], shard))
        elif not done[shard]:
            wanted = [shard]


def drive(steps: Generator[list[Read], list[Rows], Any], read: Any) -> Any:
    """Run :func:`merge` with ``read(reads) -> rows`` (one pipeline per call)."""
    try:
        reads = next(steps)
        while True:
            reads = steps.send(read(reads))
    except StopIteration as stop:
        return stop.value


async def adrive(steps: Generator[list[Read], list[Rows], Any], read: Any) -> Any:
    """:func:`drive` with an async ``read``."""
    try:
        reads = next(steps)
        while True:
            reads = steps.send(await read(reads))
    except StopIteration as stop:
        return stop.value
