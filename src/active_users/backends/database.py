"""Database backend: rows for entries, users and visitors, upserted on touch, counted by time.

Counting and paging are range scans of the ``(kind, touched, id)`` index (PostgreSQL
counts by a partial ``touched`` index per kind, migration 0008). Pages use
keyset pagination on ``(touched, id)``, so a deep page costs what the first one does.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, OperationalError, connections, transaction
from django.db.models import Count, DateTimeField, Field, Max, Model, Q
from django.db.models.constants import OnConflict
from django.db.models.functions import TruncMonth

from active_users import clock
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
    month_starts,
)
from active_users.conf import conf
from active_users.exceptions import BadRequest
from active_users.signals import user_became_active

FLUSH_KEY = "last-seen-flush"
CATCH_UP_KEY = "last-seen-catch-up"
# How many (day, person) marks, and row keys, a process remembers before it starts over.
MAX_NOTED = 100_000
MAX_KEYS = 100_000
# ``SET LOCAL synchronous_commit TO OFF`` as a function in FROM: it rides on the statement.
QUICK_COMMIT = "set_config('synchronous_commit', 'off', true) AS quick"


class Row(NamedTuple):
    """The columns of an ``ActiveEntry`` that a touch writes."""

    key: str
    kind: int
    user_key: str
    data: str
    touched: datetime
    session: str = ""


_datetime = clock.from_timestamp
_timestamp = clock.to_timestamp


# MySQL/MariaDB "deadlock found" and "lock wait timeout"; PostgreSQL "deadlock detected"
# and "serialization failure". The database rolled the statement (or transaction) back.
RETRYABLE = {1213, 1205, "40P01", "40001"}
ATTEMPTS = 3


def _retryable(exc: OperationalError) -> bool:
    cause = exc.__cause__
    codes = {getattr(cause, "sqlstate", None), getattr(cause, "pgcode", None)}
    if exc.args:
        codes.add(exc.args[0])
    return bool(codes & RETRYABLE)


def _retrying(call: Any) -> Any:
    """``call()``, again (up to three times in all) when the database chose it as a deadlock
    victim: concurrent first touches of one user can deadlock on InnoDB's unique index."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except OperationalError as exc:
            if attempt == ATTEMPTS - 1 or not _retryable(exc):
                raise
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def unique_key(who: str) -> str:
    """The ``DailyUnique.key`` of a user id (or a visitor's hash)."""
    return hashlib.blake2b(who.encode(), digest_size=16).hexdigest()


def bulk_upsert(
    alias: str,
    model: type[Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    update: str,
    unique: str,
    min_step: float = 0.0,
    quick_commit: bool = False,
) -> None:
    """Insert ``rows`` (values of the fields ``names``, in that order) or, for those whose
    ``unique`` field exists, move their ``update`` field (a date-time) forward to the row's
    value (never back: flushes of several processes arrive in any order, as on Redis, whose
    scores only grow; and only by ``min_step`` seconds or more), in the database's own
    upsert syntax (the one Django's ``bulk_create(update_conflicts=True)`` writes, made
    conditional), without building a model instance per row: a flush holds hundreds.
    ``unique`` values must not repeat.

    PostgreSQL gets one statement whose one parameter is the rows as a JSON array of arrays
    (``jsonb``: parsed once, where ``json`` would be parsed again for every column):
    psycopg quotes parameters in Python (one ``%s`` per value, or an array per column, costs
    the writer thread more than the write itself: 16 ms against 0.6 ms for 400 presences),
    and ``json.dumps`` runs in C. SQLite with its JSON functions gets one statement too, the
    rows as one JSON text read by ``json_each``, where Django's limit of 999 parameters a
    statement makes a flush of 300 presences four statements between ``BEGIN`` and
    ``COMMIT``. MySQL and MariaDB get multi-row ``VALUES`` per ``bulk_batch_size``. Values
    are str, int, None or datetime. ``quick_commit``, on PostgreSQL: the transaction the
    statement runs in commits without waiting for the WAL to reach the disk (set by the
    statement itself: no round trip of its own)."""
    if not rows:
        return
    connection = connections[alias]
    ops = connection.ops
    fields: list[Field[Any, Any]] = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, Field):
            raise TypeError(f"{name!r} is not a column of {model.__name__}")
        fields.append(field)
    columns = {name: str(field.column) for name, field in zip(names, fields, strict=True)}
    conflict, step = _forward_only(
        connection,
        ops.quote_name(model._meta.db_table),
        ops.quote_name(columns[update]),
        ops.on_conflict_suffix_sql(fields, OnConflict.UPDATE, [columns[update]], [columns[unique]]),
        min_step,
    )
    insert = f"INSERT INTO {ops.quote_name(model._meta.db_table)} "
    insert += "(" + ", ".join(map(ops.quote_name, columns.values())) + ")"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            typed = ", ".join(
                f"(r->>{n})::{field.db_type(connection)}" for n, field in enumerate(fields)
            )
            source = "jsonb_array_elements(%s::jsonb) AS r"
            if quick_commit:  # a function in FROM is evaluated once, before the rows
                source = f"{QUICK_COMMIT}, {source}"
            cursor.execute(
                f"{insert} SELECT {typed} FROM {source} {conflict}",
                [json.dumps(rows, default=_iso, ensure_ascii=False, separators=(",", ":")), *step],
            )
            return
        moments = [n for n, field in enumerate(fields) if isinstance(field, DateTimeField)]
        adapted: dict[Any, Any] = {}  # a person's rows share their time

        def adapt(row: Sequence[Any]) -> list[Any]:
            values = list(row)
            for n in moments:
                value = values[n]
                found = adapted.get(value)
                if found is None:
                    found = adapted[value] = ops.adapt_datetimefield_value(value)
                values[n] = found
            return values

        if _one_statement(connection):  # SQLite with JSON1, Django's condition for JSONField
            # ``WHERE true``: without it SQLite would read ON CONFLICT as a join's ON.
            typed = ", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(fields)))
            parameter = json.dumps([adapt(row) for row in rows], ensure_ascii=False,
                                   separators=(",", ":"))  # fmt: skip
            cursor.execute(
                f"{insert} SELECT {typed} FROM json_each(%s) WHERE true {conflict}",
                [parameter, *step],
            )
            return
        size = max(1, ops.bulk_batch_size(fields, rows))
        row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            parameters: list[Any] = []
            for row in batch:
                parameters += adapt(row)
            values_sql = ", ".join([row_sql] * len(batch))
            cursor.execute(f"{insert} VALUES {values_sql} {conflict}", parameters + step)


def _one_statement(connection: Any) -> bool:
    """Whether :func:`bulk_upsert` writes any number of rows in one statement: on
    PostgreSQL, and on SQLite with its JSON functions (as Django's ``JSONField`` needs)."""
    if connection.vendor == "sqlite":
        return bool(connection.features.supports_json_field)
    return bool(connection.vendor == "postgresql")


def _forward_only(
    connection: Any, table: str, column: str, conflict: str, min_step: float
) -> tuple[str, list[Any]]:
    """Django's ``ON CONFLICT … DO UPDATE SET c = EXCLUDED.c`` (``ON DUPLICATE KEY UPDATE
    c = VALUE(c)`` on MySQL and MariaDB), made to keep the later of the two values, and to
    keep the stored one unless the new one is at least ``min_step`` seconds later; with the
    parameters it adds. A row left as it was is not rewritten (on PostgreSQL: no new row
    version, no index entries)."""
    if connection.vendor == "mysql":
        head, new = conflict.rsplit(" = ", 1)
        if not min_step:
            return f"{head} = GREATEST({column}, {new})", []
        later = f"{column} + INTERVAL %s MICROSECOND"
        return f"{head} = IF({new} >= {later}, {new}, {column})", [round(min_step * 1e6)]
    if not min_step:
        return f"{conflict} WHERE {table}.{column} < EXCLUDED.{column}", []
    if connection.vendor == "postgresql":
        earlier = f"EXCLUDED.{column} - make_interval(secs => %s)"
        return f"{conflict} WHERE {table}.{column} <= {earlier}", [min_step]
    # SQLite keeps date-times as text, 'YYYY-MM-DD HH:MM:SS.ffffff', which sorts as it reads.
    earlier = f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', EXCLUDED.{column}, %s)"
    return f"{conflict} WHERE {table}.{column} <= {earlier}", [f"-{min_step:.6f} seconds"]


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


class DatabaseBackend(BaseBackend):
    def __init__(self) -> None:
        if not apps.is_installed("active_users"):
            raise ImproperlyConfigured(
                "active_users: the database backend keeps its rows in a table; add "
                "'active_users' to INSTALLED_APPS and run migrate, or use the Redis "
                "backend (ACTIVE_USERS_BACKEND = 'redis')."
            )
        from active_users.models import ActiveEntry, DailyUnique, HistorySample, Kind

        self.model = ActiveEntry
        self.kind = Kind
        self.sample_model = HistorySample
        self.unique_model = DailyUnique
        self.alias = conf.DATABASE
        # Who this process already marked as seen on ``_noted_day``: (kind, id).
        self._noted_day: date | None = None
        self._noted: set[tuple[int, str]] = set()
        self._noted_lock = threading.Lock()
        # Row keys by (kind, member): a flush builds hundreds of rows, mostly the same people
        # as the flush before.
        self._keys: dict[tuple[int, str], str] = {}

    @property
    def objects(self):  # type: ignore[no-untyped-def]
        return self.model.objects.using(self.alias)

    def _row(
        self, kind: int, member: str, user_id: str, touched: datetime, session: str = ""
    ) -> Row:
        digest = self._keys.get((kind, member))
        if digest is None:
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()
            digest = hashlib.blake2b(f"{kind}:{member}".encode(), digest_size=20).hexdigest()
            self._keys[(kind, member)] = digest
        return Row(digest, kind, user_id, member, touched, session)

    def _rows(self, presence: Presence, touched: datetime) -> list[Row]:
        if presence.anonymous:
            return [self._row(self.kind.VISITOR, presence.member, "", touched)]
        return [
            self._row(
                self.kind.ENTRY, presence.member, presence.user_id, touched, presence.session
            ),
            self._row(self.kind.USER, presence.user_id, presence.user_id, touched),
        ]

    def _upsert(self, rows: list[Row], min_step: float = 0.0, quick_commit: bool = False) -> None:
        bulk_upsert(
            self.alias, self.model, Row._fields, rows, "touched", "key", min_step, quick_commit
        )

    def touch_many(self, items: list[tuple[Presence, float]], min_step: float = 0.0) -> None:
        # One row per key with its latest time, in key order: concurrent flushes of several
        # processes then lock rows in the same order and cannot deadlock each other.
        rows: dict[str, Row] = {}
        for presence, when in items:
            for row in self._rows(presence, _datetime(when)):
                found = rows.get(row.key)
                if found is None or found.touched < row.touched:
                    rows[row.key] = row
        ordered = [rows[key] for key in sorted(rows)]
        marks = self._unnoted(items) if conf.HISTORY else {}

        connection = connections[self.alias]
        quick = self._quick_commit()

        def write() -> None:
            if quick and not marks and _one_statement(connection):
                # One statement in autocommit, its own transaction: one round trip on
                # PostgreSQL, one call into SQLite. Each of BEGIN, SET, COMMIT and every
                # further statement would be another wait of the writer thread, and another
                # handover of the GIL to and from the request being served.
                self._upsert(ordered, min_step, quick_commit=True)
                return
            with transaction.atomic(using=self.alias):
                self._upsert(ordered, min_step, quick_commit=quick)
                if marks:
                    self.unique_model.objects.using(self.alias).bulk_create(
                        list(marks.values()), ignore_conflicts=True
                    )

        _retrying(write)
        self._noted_add(marks)

    def _unnoted(self, items: list[tuple[Presence, float]]) -> dict[tuple[Any, ...], Any]:
        """``DailyUnique`` rows for the people of ``items`` not yet marked by this process on
        their day."""
        found: dict[tuple[Any, ...], Any] = {}
        for presence, when in items:
            day = day_of(when).date
            kind = self.kind.VISITOR if presence.anonymous else self.kind.USER
            mark = (kind, presence.user_id or presence.member)
            with self._noted_lock:
                if self._noted_day == day and mark in self._noted:
                    continue
            key = unique_key(mark[1])
            found[(day, *mark)] = self.unique_model(day=day, kind=kind, key=key)
        return found

    def _noted_add(self, marks: dict[tuple[Any, ...], Any]) -> None:
        with self._noted_lock:
            for day, kind, who in marks:
                if self._noted_day != day or len(self._noted) >= MAX_NOTED:
                    self._noted_day, self._noted = day, set()
                self._noted.add((kind, who))

    def touch(self, presence: Presence, now: float | None = None) -> bool:
        moment = _datetime(time.time() if now is None else now)
        rows = self._rows(presence, moment)
        # One transaction, one commit (one fsync on SQLite), except on InnoDB, where one
        # transaction around the statements deadlocks concurrent touches.
        if connections[self.alias].vendor == "mysql":
            return self._write(presence, rows, now, _retrying)
        return bool(_retrying(lambda: self._write_in_transaction(presence, rows, now)))

    def _write_in_transaction(self, presence: Presence, rows: list[Row], now: float | None) -> bool:
        quick = self._quick_commit()
        with transaction.atomic(using=self.alias):
            return self._write(presence, rows, now, lambda call: call(), quick_commit=quick)

    def _quick_commit(self) -> bool:
        """Presence is fleeting: on PostgreSQL a crash may lose the last few milliseconds of
        it, and in exchange its commits do not wait for the WAL to reach the disk. Only in
        transactions of this package's own (none is open on the connection): the host's
        commits are not its to hurry."""
        return bool(connections[self.alias].get_autocommit())

    def _write(
        self,
        presence: Presence,
        rows: list[Row],
        now: float | None,
        run: Any,
        quick_commit: bool = False,
    ) -> bool:
        """The touch's statements, each through ``run`` (which retries deadlocks when each
        statement is its own transaction; a retried statement had no effect)."""
        returning = False
        if not presence.anonymous and user_became_active.has_listeners():
            returning = run(lambda: self._returning(rows[1], now))
        run(lambda: self._upsert(rows, quick_commit=quick_commit))
        if conf.HISTORY:
            run(lambda: self._note_unique(presence, now))
        return returning

    def _note_unique(self, presence: Presence, now: float | None) -> None:
        """Mark the user (or visitor) as seen today: one insert per person, day and process."""
        marks = self._unnoted([(presence, time.time() if now is None else now)])
        if marks:
            self.unique_model.objects.using(self.alias).bulk_create(
                list(marks.values()), ignore_conflicts=True
            )
            self._noted_add(marks)

    def _returning(self, user_row: Row, now: float | None) -> bool:
        """Whether this touch brings the user back from offline. Row locks make exactly one
        of concurrent touches see the transition."""
        offline_before = _datetime((time.time() if now is None else now) - conf.IDLE_AFTER)
        mine = self.objects.filter(key=user_row.key)
        if mine.filter(touched__gte=offline_before).update(touched=user_row.touched):
            return False
        if mine.filter(touched__lt=offline_before).update(touched=user_row.touched):
            return True
        try:
            with transaction.atomic(using=self.alias):
                self.model(**user_row._asdict()).save(using=self.alias, force_insert=True)
        except IntegrityError:
            return False
        return True

    def _live(self, now: float | None, kind: int = 0):  # type: ignore[no-untyped-def]
        return self.objects.filter(kind=kind, touched__gt=_datetime(self.cutoff(now)))

    def counts(self, now: float | None = None) -> Counts:
        return Counts(
            entries=self._live(now, self.kind.ENTRY).count(),
            users=self._live(now, self.kind.USER).count(),
            visitors=self._live(now, self.kind.VISITOR).count(),
        )

    def count(self, now: float | None = None) -> int:
        return int(self._live(now).count())

    def page_cursor(self, cursor: str) -> tuple[datetime, int]:
        """The (touched, id) of a page cursor, checked before any query: a forged one is a
        ``BadRequest``, never a database error (that would open the circuit breaker)."""
        stamp, last_id = decode_cursor(cursor, str, int)
        try:
            moment = datetime.fromisoformat(stamp)
        except (ValueError, OverflowError):
            moment = None
        if (
            moment is None
            or (moment.tzinfo is not None) != settings.USE_TZ
            or not 1970 <= moment.year <= 9000
        ):
            raise BadRequest("cursor", "not one this server gave out")
        return clock.normalize(moment), last_id

    def page(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        after = self.page_cursor(cursor) if cursor else None
        rows = self._live(now).order_by("-touched", "-id")
        if after is not None:
            moment, last_id = after
            # "before the cursor" as a range on touched (index-friendly) minus the tie.
            rows = rows.filter(touched__lte=moment).exclude(touched=moment, id__gte=last_id)
        found = list(rows.values_list("data", "touched", "id")[: limit + 1])
        page = Page(items=[(data, _timestamp(touched)) for data, touched, _ in found[:limit]])
        if len(found) > limit:
            _, touched, last_id = found[limit - 1]
            page.next_cursor = encode_cursor(touched.isoformat(), last_id)
        return page

    def members(self, now: float | None = None) -> list[str]:
        return list(self._live(now).order_by("-touched", "-id").values_list("data", flat=True))

    def remove(self, presence: Presence) -> None:
        self.objects.filter(key=self._rows(presence, _datetime(0))[0].key).delete()

    def remove_session(self, session: str) -> None:
        if session:
            self.objects.filter(session=session, kind=self.kind.ENTRY).delete()

    def clear(self) -> None:
        self.objects.all().delete()

    def clear_expired(self, now: float | None = None, batch_size: int = 5000) -> int:
        now = time.time() if now is None else now
        stale = self.objects.filter(
            Q(
                touched__lte=_datetime(self.cutoff(now)),
                kind__in=[self.kind.ENTRY, self.kind.VISITOR],
            )
            | Q(touched__lte=_datetime(now - conf.users_retention), kind=self.kind.USER)
        )
        deleted = 0
        while True:
            ids = list(stale.values_list("id", flat=True)[:batch_size])
            if not ids:
                return deleted
            deleted += self.objects.filter(id__in=ids).delete()[0]

    def remove_user(self, user_id: str) -> None:
        self.objects.filter(user_key=user_id).delete()

    def seen(self, user_ids: list[str]) -> dict[str, float]:
        rows = self.objects.filter(kind=self.kind.USER, user_key__in=user_ids)
        return {uid: _timestamp(t) for uid, t in rows.values_list("user_key", "touched")}

    def seen_between(
        self, since: float, until: float, limit: int, cursor: str | None = None
    ) -> tuple[list[tuple[str, float]], str | None]:
        rows = self.objects.filter(
            kind=self.kind.USER, touched__gt=_datetime(since), touched__lte=_datetime(until)
        ).order_by("touched", "id")
        if cursor:
            stamp, last_id = decode_cursor(cursor, str, int)
            moment = datetime.fromisoformat(stamp)
            rows = rows.filter(touched__gte=moment).exclude(touched=moment, id__lte=last_id)
        found = list(rows.values_list("user_key", "touched", "id")[:limit])
        batch = [(uid, _timestamp(t)) for uid, t, _ in found]
        if len(found) < limit:
            return batch, None
        return batch, encode_cursor(found[-1][1].isoformat(), found[-1][2])

    # A claim is a bookkeeping row whose ``touched`` holds the claim's end; the flush's row
    # keeps in ``data`` the time up to which the last flush (or catch-up) wrote.
    def _claim(self, key: str, hold: float, now: float | None) -> bool:
        now = time.time() if now is None else now
        claim = self.objects.filter(key=key, kind=self.kind.MARK)
        if claim.filter(touched__lte=_datetime(now)).update(touched=_datetime(now + hold)):
            return True
        try:
            with transaction.atomic(using=self.alias):
                self.model(
                    key=key, kind=self.kind.MARK, data="0", touched=_datetime(now + hold)
                ).save(using=self.alias, force_insert=True)
        except IntegrityError:
            return False
        return True

    def _flushed(self) -> float:
        mark = self.objects.filter(key=FLUSH_KEY, kind=self.kind.MARK)
        return float(mark.values_list("data", flat=True).first() or 0)

    def claim_flush(self, hold: float, now: float | None = None) -> float | None:
        return self._flushed() if self._claim(FLUSH_KEY, hold, now) else None

    def claim_catch_up(self, hold: float, now: float | None = None) -> float | None:
        return self._flushed() if self._claim(CATCH_UP_KEY, hold, now) else None

    def flush_done(self, until: float) -> None:
        mark = self.objects.filter(key=FLUSH_KEY, kind=self.kind.MARK)
        if mark.update(data=repr(until)):
            return
        try:  # a catch-up before any flush: the row starts unclaimed
            with transaction.atomic(using=self.alias):
                self.model(
                    key=FLUSH_KEY, kind=self.kind.MARK, data=repr(until), touched=_datetime(0)
                ).save(using=self.alias, force_insert=True)
        except IntegrityError:
            mark.update(data=repr(until))

    # History
    @property
    def samples_objects(self):  # type: ignore[no-untyped-def]
        return self.sample_model.objects.using(self.alias)

    def claim_minute(self, minute: int) -> bool:
        # A cheap look first; the insert in record_sample is the real claim.
        return not self.samples_objects.filter(resolution=0, start=_datetime(minute * 60)).exists()

    def record_sample(self, sample: Sample) -> None:
        values = {"entries": sample.entries, "users": sample.users, "visitors": sample.visitors}
        try:
            with transaction.atomic(using=self.alias):
                self.samples_objects.create(resolution=0, start=_datetime(sample.start), **values)
        except IntegrityError:
            return  # another process sampled this minute
        hour = sample.start - sample.start % 3600
        peaks = self.samples_objects.filter(
            resolution=0, start__gte=_datetime(hour), start__lt=_datetime(hour + 3600)
        ).aggregate(entries=Max("entries"), users=Max("users"), visitors=Max("visitors"))
        with_target = connections[self.alias].features.supports_update_conflicts_with_target
        self.samples_objects.bulk_create(
            [self.sample_model(resolution=1, start=_datetime(hour), **peaks)],
            update_conflicts=True,
            unique_fields=["resolution", "start"] if with_target else None,
            update_fields=["entries", "users", "visitors"],
        )
        oldest_minute = sample.start - conf.HISTORY_MINUTE_RETENTION * 3600
        oldest_hour = hour - conf.HISTORY_DAY_RETENTION * 86400
        self.samples_objects.filter(
            Q(resolution=0, start__lt=_datetime(oldest_minute))
            | Q(resolution=1, start__lt=_datetime(oldest_hour))
        ).delete()
        oldest_day = day_of(sample.start).date - timedelta(days=conf.HISTORY_DAY_RETENTION)
        self.unique_model.objects.using(self.alias).filter(day__lt=oldest_day).delete()

    def samples(self, hourly: bool, since: int, until: int) -> list[Sample]:
        rows = self.samples_objects.filter(
            resolution=int(hourly), start__gte=_datetime(since), start__lte=_datetime(until)
        ).order_by("start")
        return [
            Sample(int(_timestamp(start)), entries, users, visitors)
            for start, entries, users, visitors in rows.values_list(
                "start", "entries", "users", "visitors"
            )
        ]

    def uniques(self, today: date, days: int, months: int, windows: list[int]) -> Uniques:
        rows = self.unique_model.objects.using(self.alias)
        user, visitor = self.kind.USER, self.kind.VISITOR
        result = Uniques()
        if days:
            first = today - timedelta(days=days - 1)
            per_day: dict[tuple[date, int], int] = {
                (d, k): n
                for d, k, n in rows.filter(day__gte=first, day__lte=today)
                .values_list("day", "kind")
                .annotate(n=Count("id"))
                .order_by()
            }
            shown = [first + timedelta(days=n) for n in range(days)]
            result.days = [
                (d, per_day.get((d, user), 0), per_day.get((d, visitor), 0)) for d in shown
            ]
        if months:
            starts = month_starts(today, months)
            per_month: dict[tuple[date, int], int] = {}
            for month, kind, n in (
                rows.filter(day__gte=starts[0], day__lte=today)
                .annotate(month=TruncMonth("day"))
                .values_list("month", "kind")
                .annotate(n=Count("key", distinct=True))
                .order_by()
            ):
                month = month.date() if isinstance(month, datetime) else month
                per_month[(month, kind)] = n
            result.months = [
                (m, per_month.get((m, user), 0), per_month.get((m, visitor), 0)) for m in starts
            ]
        if windows:
            aggregates = {}
            for window in windows:
                since = today - timedelta(days=window - 1)
                for name, kind in (("u", user), ("v", visitor)):
                    aggregates[f"{name}{window}"] = Count(
                        "key", distinct=True, filter=Q(kind=kind, day__gte=since)
                    )
            since = today - timedelta(days=max(windows) - 1)
            found = rows.filter(day__gte=since, day__lte=today).aggregate(**aggregates)
            result.windows = {w: (found[f"u{w}"], found[f"v{w}"]) for w in windows}
        return result

    def clear_history(self) -> None:
        self.samples_objects.all().delete()
        self.unique_model.objects.using(self.alias).all().delete()
        with self._noted_lock:
            self._noted_day, self._noted = None, set()
