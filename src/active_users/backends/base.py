"""The storage interface every backend implements."""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed

from active_users import clock
from active_users.conf import conf
from active_users.exceptions import BadRequest


def is_redis_cache(cache: dict[str, Any]) -> bool:
    """Whether a ``CACHES`` entry is a Redis cache (django-redis, Django's own, or alike)."""
    return "redis" in str(cache.get("BACKEND", "")).lower()


@dataclass(frozen=True, slots=True)
class Presence:
    """One thing that is active: a user's entry, or an anonymous visitor's session.

    ``member`` is the entry's stored form (``entry.dump()``) for users and the visitor's
    keyed hash for visitors; ``user_id`` is ``str(user.pk)``, empty for visitors;
    ``session`` is the keyed hash of the user's session key (empty when there is none), by
    which logging out finds every entry of the session.
    """

    member: str
    user_id: str = ""
    session: str = ""

    @property
    def anonymous(self) -> bool:
        return not self.user_id


@dataclass(frozen=True, slots=True)
class Counts:
    entries: int
    users: int
    visitors: int


@dataclass(slots=True)
class Page:
    """A page of active entries, newest first: ``(member, last_active_timestamp)`` pairs."""

    items: list[tuple[str, float]] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """Active counts at ``start`` (a UNIX time): a minute's sample, or an hour's peaks."""

    start: int
    entries: int
    users: int
    visitors: int


@dataclass(slots=True)
class Uniques:
    """Distinct users and visitors: per day and per calendar month (oldest first, as
    ``(first day, users, visitors)``), and over the last N days (``windows[N]``)."""

    days: list[tuple[date, int, int]] = field(default_factory=list)
    months: list[tuple[date, int, int]] = field(default_factory=list)
    windows: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Day:
    """A calendar day in the site's ``TIME_ZONE``, with its UNIX time bounds."""

    date: date
    start: float
    end: float

    @property
    def label(self) -> str:
        return self.date.isoformat()

    @property
    def month_label(self) -> str:
        return self.date.isoformat()[:7]


_today: Day | None = None


def day_of(now: float) -> Day:
    """The site-local day ``now`` falls in (computed once per day per process)."""
    global _today
    found = _today
    if found is not None and found.start <= now < found.end:
        return found
    found = Day(*clock.local_day(now))
    if found.start <= now < found.end:  # not cached across a DST fold
        _today = found
    return found


def forget_day() -> None:
    """Drop the cached day (``TIME_ZONE`` changed)."""
    global _today
    _today = None


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"TIME_ZONE", "USE_TZ"}:
        forget_day()


setting_changed.connect(_setting_changed)


def month_starts(today: date, months: int) -> list[date]:
    """The first days of the last ``months`` calendar months, oldest first."""
    year, month = today.year, today.month
    found = []
    for _ in range(months):
        found.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found[::-1]


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


#: Longest cursor the package gives out (with room to spare).
MAX_CURSOR_LENGTH = 200
#: Largest number in a cursor: exact in a double, within every database's big integers and
#: Redis' offsets.
MAX_CURSOR_NUMBER = 2**53
MAX_CURSOR_TEXT = 64


def _cursor_value_ok(value: Any, kind: type) -> bool:
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) <= MAX_CURSOR_TEXT
    if not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and 0 <= value <= MAX_CURSOR_NUMBER


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """Decode a cursor made by :func:`encode_cursor` and check it before any store call:
    ``types`` are its values' types; numbers finite, from 0 to ``MAX_CURSOR_NUMBER``; texts
    short. :class:`~active_users.exceptions.BadRequest` (a ``ValueError``, so the circuit
    breaker does not take it for a store failure) for anything else."""
    refused = BadRequest("cursor", "not one this server gave out")
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(_cursor_value_ok(v, t) for v, t in zip(values, types))
    ):
        raise refused
    return tuple(values)


class BaseBackend:
    """Where active entries live.

    Subclasses implement the sync methods; every method has an ``a*`` twin that runs it in
    a thread unless the backend has native async calls (the Redis backend does for the
    request path and the reads). Times are UNIX timestamps (``time.time()``); an entry
    is active while ``now - last_touch < ACTIVE_USERS_KEY_EXPIRE``.
    """

    def touch(self, presence: Presence, now: float | None = None) -> bool:
        """Mark ``presence`` active at ``now``, creating it if needed.

        Returns True when this call brought a user back from offline (unseen for
        ``ACTIVE_USERS_IDLE_AFTER`` seconds, or never seen): exactly one call per such
        transition returns True, whichever process makes it. A backend for which the
        detection costs extra may skip it (returning False) while
        ``active_users.signals.user_became_active`` has no receivers.
        """
        raise NotImplementedError

    def touch_many(self, items: list[tuple[Presence, float]], min_step: float = 0.0) -> None:
        """Mark each presence active at its time, in one transaction or one round trip (the
        write-behind buffer's flush). Sends no signal. A backend may leave a stored time that
        is less than ``min_step`` seconds older than the new one (the database backend does;
        Redis, whose writes cost little, keeps the exact latest time)."""
        for presence, when in items:
            self.touch(presence, when)

    def counts(self, now: float | None = None) -> Counts:
        """Active entries, distinct active users and active anonymous visitors."""
        raise NotImplementedError

    def count(self, now: float | None = None) -> int:
        """Active entries of authenticated users."""
        return self.counts(now).entries

    def page(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        """Up to ``limit`` active entries, newest first, from ``cursor`` on."""
        raise NotImplementedError

    def members(self, now: float | None = None) -> list[str]:
        """Every active entry, newest first."""
        raise NotImplementedError

    def remove(self, presence: Presence) -> None:
        """Forget ``presence`` at once."""
        raise NotImplementedError

    def remove_session(self, session: str) -> None:
        """Forget every entry written with ``Presence.session == session`` (logging out)."""
        raise NotImplementedError

    def clear(self) -> None:
        """Forget everything this backend stored, and nothing else."""
        raise NotImplementedError

    def clear_expired(self, now: float | None = None) -> int:
        """Delete entries that are no longer active; return how many went."""
        return 0

    def remove_user(self, user_id: str) -> None:
        """Forget every entry of a user, and the user (for deleted users)."""
        raise NotImplementedError

    def seen(self, user_ids: list[str]) -> dict[str, float]:
        """Last touch of each of these users that the store still remembers."""
        raise NotImplementedError

    def seen_between(
        self, since: float, until: float, limit: int, cursor: str | None = None
    ) -> tuple[list[tuple[str, float]], str | None]:
        """Users last touched in ``(since, until]``, oldest first, a batch at a time."""
        raise NotImplementedError

    def claim_flush(self, hold: float, now: float | None = None) -> float | None:
        """Claim the next last-seen flush for ``hold`` seconds, fleet-wide.

        Returns the time up to which the previous flush wrote (0.0 if unknown), or None
        when another process holds the claim.
        """
        raise NotImplementedError

    def flush_done(self, until: float) -> None:
        """Record that last-seen times up to ``until`` are in the database."""
        raise NotImplementedError

    def claim_catch_up(self, hold: float, now: float | None = None) -> float | None:
        """Claim, for ``hold`` seconds fleet-wide, bringing the last-seen rows up to date
        before a read that filters or orders by last activity.

        Returns what :meth:`claim_flush` returns: the time up to which the rows are
        written, or None when another reader claimed it less than ``hold`` seconds ago. This
        default shares the periodic flush's claim, so readers wait out a running interval's
        claim; a backend with a claim of its own lets them catch up at any time.
        """
        return self.claim_flush(hold, now)

    # History (``active_users.history``)
    def claim_minute(self, minute: int) -> bool:
        """Whether this process should sample minute ``minute`` (UNIX time // 60): True
        for one process of the fleet (the database backend may let a few try)."""
        raise NotImplementedError

    def record_sample(self, sample: Sample) -> None:
        """Keep a minute's sample, raise its hour's peaks, and drop what is past
        retention."""
        raise NotImplementedError

    def samples(self, hourly: bool, since: int, until: int) -> list[Sample]:
        """Minute samples (or hourly peaks) that start in ``[since, until]``, oldest first:
        one round trip or one query."""
        raise NotImplementedError

    def uniques(self, today: date, days: int, months: int, windows: list[int]) -> Uniques:
        """Distinct users and visitors per day for ``days`` days and per month for
        ``months`` months up to ``today``, and over each window of N days."""
        raise NotImplementedError

    def clear_history(self) -> None:
        """Forget samples and uniques."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (the backend is being replaced)."""

    async def atouch(self, presence: Presence, now: float | None = None) -> bool:
        return await sync_to_async(self.touch)(presence, now)

    async def acounts(self, now: float | None = None) -> Counts:
        return await sync_to_async(self.counts)(now)

    async def acount(self, now: float | None = None) -> int:
        return (await self.acounts(now)).entries

    async def apage(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        return await sync_to_async(self.page)(limit, cursor, now)

    async def amembers(self, now: float | None = None) -> list[str]:
        return await sync_to_async(self.members)(now)

    async def aremove(self, presence: Presence) -> None:
        await sync_to_async(self.remove)(presence)

    async def aclear(self) -> None:
        await sync_to_async(self.clear)()

    async def atouch_many(self, items: list[tuple[Presence, float]], min_step: float = 0.0) -> None:
        await sync_to_async(self.touch_many)(items, min_step)

    async def aremove_session(self, session: str) -> None:
        await sync_to_async(self.remove_session)(session)

    async def aclear_expired(self, now: float | None = None) -> int:
        return await sync_to_async(self.clear_expired)(now)

    async def aremove_user(self, user_id: str) -> None:
        await sync_to_async(self.remove_user)(user_id)

    async def aseen(self, user_ids: list[str]) -> dict[str, float]:
        return await sync_to_async(self.seen)(user_ids)

    async def aseen_between(
        self, since: float, until: float, limit: int, cursor: str | None = None
    ) -> tuple[list[tuple[str, float]], str | None]:
        return await sync_to_async(self.seen_between)(since, until, limit, cursor)

    async def aclaim_flush(self, hold: float, now: float | None = None) -> float | None:
        return await sync_to_async(self.claim_flush)(hold, now)

    async def aflush_done(self, until: float) -> None:
        await sync_to_async(self.flush_done)(until)

    async def aclaim_catch_up(self, hold: float, now: float | None = None) -> float | None:
        return await sync_to_async(self.claim_catch_up)(hold, now)

    async def aclaim_minute(self, minute: int) -> bool:
        return await sync_to_async(self.claim_minute)(minute)

    async def arecord_sample(self, sample: Sample) -> None:
        await sync_to_async(self.record_sample)(sample)

    async def asamples(self, hourly: bool, since: int, until: int) -> list[Sample]:
        return await sync_to_async(self.samples)(hourly, since, until)

    async def auniques(self, today: date, days: int, months: int, windows: list[int]) -> Uniques:
        return await sync_to_async(self.uniques)(today, days, months, windows)

    async def aclear_history(self) -> None:
        await sync_to_async(self.clear_history)()

    async def aclose(self) -> None:
        """Release connections (those of the running event loop, where a backend keeps
        them per loop)."""
        await sync_to_async(self.close)()

    @staticmethod
    def cutoff(now: float | None) -> float:
        """The oldest touch time that still counts as active."""
        return (time.time() if now is None else now) - conf.KEY_EXPIRE
