"""Last seen and online status.

The live store keeps each user's last touch (Redis: the ``users`` sorted set; database: the
backend's user rows). Every ``ACTIVE_USERS_LAST_SEEN_INTERVAL`` seconds one process of the
fleet claims the flush and copies the users touched since the previous flush into
:class:`active_users.models.LastSeen` with bulk upserts, in a background thread. A user's
row is thus written at most once per interval however many requests they make, and a Redis
flush or restart loses at most the last interval. Reads merge both sources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.signals import setting_changed
from django.db import DatabaseError, transaction
from django.db.models import F, QuerySet

from active_users import clock
from active_users.backends import BaseBackend, get_backend
from active_users.backends.buffer import buffer
from active_users.backends.database import bulk_upsert
from active_users.backends.health import reading
from active_users.background import BackgroundJob
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.faults import database_optional, warn_once

ONLINE, IDLE, OFFLINE = "online", "idle", "offline"
BATCH_SIZE = 1000
# Flushes re-read this many seconds before the previous one ended, for app servers whose
# clocks run a little behind; writing a time twice is harmless.
CLOCK_SLACK = 5.0
# Readers bring the rows up to date at most once per this many seconds, fleet-wide.
CATCH_UP_HOLD = 1.0


def _write(rows: list[tuple[str, float]]) -> int:
    from active_users.models import LastSeen

    User = get_user_model()
    pk_field = User._meta.pk
    wanted = {}
    for user_id, stamp in rows:
        try:
            wanted[pk_field.to_python(user_id)] = stamp
        except Exception:  # an id of another user model, from an earlier deployment
            continue
    alias = conf.DATABASE
    existing = User.objects.using(alias).filter(pk__in=list(wanted)).values_list("pk", flat=True)
    records = [(pk, clock.from_timestamp(wanted[pk])) for pk in existing]  # deleted users: none
    bulk_upsert(alias, LastSeen, ["user", "last_activity"], records, "last_activity", "user")
    return len(records)


def flush_last_seen(force: bool = False, now: float | None = None) -> int:
    """Copy pending last-seen times from the live store to the database; return how many
    users were written. Without ``force`` it does nothing when another process holds the
    current interval's claim."""
    if not conf.LAST_SEEN:
        return 0
    buffer.flush()  # this process's pending refreshes first
    backend = get_backend()
    now = time.time() if now is None else now
    hold = 0.001 if force else conf.LAST_SEEN_INTERVAL * 0.75
    since = backend.claim_flush(hold, now)
    if since is None:
        return 0
    return _copy(backend, 0.0 if force else max(0.0, since - CLOCK_SLACK), now)


def _copy(backend: BaseBackend, since: float, until: float) -> int:
    written, cursor = 0, None
    while True:
        rows, cursor = backend.seen_between(since, until, BATCH_SIZE, cursor)
        if rows:
            written += _write(rows)
        if cursor is None:
            break
    backend.flush_done(until)
    return written


def catch_up(now: float | None = None) -> int:
    """Bring the ``LastSeen`` rows up to date with the live store before a read that
    filters or orders by last activity; return how many users were written.

    It copies the users touched since the last flush (or catch-up), a cost that follows
    the number of users active since then, never the size of the store or of the table.
    One reader of the fleet does it per ``CATCH_UP_HOLD`` seconds; the others read the
    rows as they are, at most that much behind. A failing store is skipped: the rows are
    then read as the last flush left them.
    """
    if not conf.LAST_SEEN or _in_event_loop():
        return 0
    now = time.time() if now is None else now
    try:
        with reading():  # this process's pending refreshes first
            backend = get_backend()
            since = backend.claim_catch_up(CATCH_UP_HOLD, now)
        if since is None:
            return 0
        written, cursor = 0, None
        while True:
            with reading():
                rows, cursor = backend.seen_between(
                    max(0.0, since - CLOCK_SLACK), now, BATCH_SIZE, cursor
                )
            if rows:
                with transaction.atomic(using=conf.DATABASE):  # a savepoint in a request's
                    written += _write(rows)
            if cursor is None:
                break
        with reading():
            backend.flush_done(now)
    except StoreUnavailable:
        return 0
    except DatabaseError as exc:  # the read that follows says what it can
        warn_once("last seen is read without catching up", exc)
        return 0
    return written


async def acatch_up(now: float | None = None) -> int:
    """Async twin of :func:`catch_up`, for async code about to read the rows (the sync
    version does nothing in an event loop, where the database may not be used)."""
    return await sync_to_async(catch_up)(now)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def live_seen(user_ids: list[str]) -> dict[str, float]:
    """The live store's last touch of each of these users, in one round trip; nothing when
    the store is unavailable."""
    if not user_ids:
        return {}
    try:
        with reading():
            return get_backend().seen(user_ids)
    except StoreUnavailable:
        return {}


class Flusher(BackgroundJob):
    """Starts a background flush at most every quarter interval per process."""

    name = "active-users-last-seen"
    failure = "active_users: could not write last-seen times"

    def __init__(self) -> None:
        super().__init__()
        self.next_check: float | None = None

    def reset(self) -> None:
        self.next_check = None

    def maybe_flush(self) -> None:
        if not conf.LAST_SEEN:
            return
        now = time.monotonic()
        if self.next_check is None:  # a new process leaves the first interval to the fleet
            self.next_check = now + conf.LAST_SEEN_INTERVAL / 4
        if now < self.next_check or self.running:
            return
        self.next_check = now + conf.LAST_SEEN_INTERVAL / 4
        self.start()

    def run(self) -> None:
        flush_last_seen()


flusher = Flusher()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES"}:
        flusher.reset()


setting_changed.connect(_setting_changed)


def _user_id(user: Any) -> str:
    return str(getattr(user, "pk", user))


def last_seen_many(users: Iterable[Any]) -> dict[str, datetime | None]:
    """``{str(user.pk): datetime or None}`` for users (or primary keys): one query
    and one store round trip, whatever their number."""
    ids = list(dict.fromkeys(_user_id(u) for u in users))
    if not ids:
        return {}
    found = live_seen(ids)
    if conf.LAST_SEEN:
        from active_users.models import LastSeen

        pk_field = get_user_model()._meta.pk
        keys = [pk_field.to_python(i) for i in ids]
        stored = LastSeen.objects.using(conf.DATABASE).filter(user_id__in=keys)
        with database_optional("last seen is read from the live store alone"):
            for pk, moment in stored.values_list("user_id", "last_activity"):
                found[str(pk)] = max(found.get(str(pk), 0.0), clock.to_timestamp(moment))
    return {i: (clock.from_timestamp(found[i]) if i in found else None) for i in ids}


def last_seen(user: Any) -> datetime | None:
    """When ``user`` (or a primary key) last made a request, or None if never seen."""
    return last_seen_many([user])[_user_id(user)]


def status_of(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return OFFLINE
    age = clock.seconds_since(moment, now)
    if age < conf.ONLINE_AFTER:
        return ONLINE
    if age < conf.IDLE_AFTER:
        return IDLE
    return OFFLINE


def status(user: Any) -> str:
    """``"online"`` (seen within ``ACTIVE_USERS_ONLINE_AFTER`` seconds, default 300),
    ``"idle"`` (within ``ACTIVE_USERS_IDLE_AFTER``, default 900) or ``"offline"``."""
    return status_of(last_seen(user))


def is_online(user: Any) -> bool:
    return status(user) == ONLINE


def users_seen_within(
    within: timedelta = timedelta(minutes=15), queryset: QuerySet[Any] | None = None
) -> QuerySet[Any]:
    """Users seen within ``within``, newest first, annotated with ``last_seen_at``; a
    queryset to filter, annotate or order further. The rows are first brought up to date
    with the live store (:func:`catch_up`)."""
    catch_up()
    if queryset is None:
        queryset = get_user_model()._default_manager.all()
    since = clock.ago(within)
    return (
        queryset.filter(active_users_last_seen__last_activity__gte=since)
        .annotate(last_seen_at=F("active_users_last_seen__last_activity"))
        .order_by("-last_seen_at")
    )
