"""Database backend: rows for entries, users and visitors, upserted on touch, counted by time.

Counting and paging are range scans of the ``(kind, touched, id)`` index. Pages use
keyset pagination on ``(touched, id)``, so a deep page costs what the first one does.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connections, transaction
from django.db.models import Q

from active_users.backends.base import (
    BaseBackend,
    Counts,
    Page,
    Presence,
    decode_cursor,
    encode_cursor,
)
from active_users.conf import conf
from active_users.signals import user_became_active

FLUSH_KEY = "last-seen-flush"


def _datetime(timestamp: float) -> datetime:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    if not settings.USE_TZ:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment


def _timestamp(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


class DatabaseBackend(BaseBackend):
    def __init__(self) -> None:
        if not apps.is_installed("active_users"):
            raise ImproperlyConfigured(
                "active_users: the database backend keeps its rows in a table; add "
                "'active_users' to INSTALLED_APPS and run migrate, or use the Redis "
                "backend (ACTIVE_USERS_BACKEND = 'redis')."
            )
        from active_users.models import ActiveEntry, Kind

        self.model = ActiveEntry
        self.kind = Kind
        self.alias = conf.DATABASE

    @property
    def objects(self):  # type: ignore[no-untyped-def]
        return self.model.objects.using(self.alias)

    def _row(self, kind: int, member: str, user_id: str, touched: datetime):  # type: ignore[no-untyped-def]
        digest = hashlib.blake2b(f"{kind}:{member}".encode(), digest_size=20).hexdigest()
        return self.model(key=digest, kind=kind, user_key=user_id, data=member, touched=touched)

    def _rows(self, presence: Presence, touched: datetime) -> list[Any]:
        if presence.anonymous:
            return [self._row(self.kind.VISITOR, presence.member, "", touched)]
        return [
            self._row(self.kind.ENTRY, presence.member, presence.user_id, touched),
            self._row(self.kind.USER, presence.user_id, presence.user_id, touched),
        ]

    def touch(self, presence: Presence, now: float | None = None) -> bool:
        moment = _datetime(time.time() if now is None else now)
        rows = self._rows(presence, moment)
        connection = connections[self.alias]
        if connection.vendor != "postgresql":
            return self._write(presence, rows, now)
        with transaction.atomic(using=self.alias):
            # Presence is fleeting: a crash may lose the last few milliseconds of it, and in
            # exchange the commit does not wait for the WAL to reach the disk. (Only here:
            # on InnoDB, one transaction around both statements deadlocks concurrent touches.)
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            return self._write(presence, rows, now)

    def _write(self, presence: Presence, rows: list[Any], now: float | None) -> bool:
        returning = False
        if not presence.anonymous and user_became_active.has_listeners():
            returning = self._returning(rows[1], now)
        with_target = connections[self.alias].features.supports_update_conflicts_with_target
        self.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["key"] if with_target else None,
            update_fields=["touched"],
        )
        return returning

    def _returning(self, user_row: Any, now: float | None) -> bool:
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
                user_row.save(using=self.alias, force_insert=True)
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

    def page(self, limit: int, cursor: str | None = None, now: float | None = None) -> Page:
        rows = self._live(now).order_by("-touched", "-id")
        if cursor:
            stamp, last_id = decode_cursor(cursor, str, int)
            try:
                moment = datetime.fromisoformat(stamp)
            except ValueError:
                raise ValueError("cursor is not one this server gave out") from None
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

    # The flush claim is a bookkeeping row: ``touched`` holds the claim's end, ``data`` the
    # time up to which the last flush wrote.
    def claim_flush(self, hold: float, now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        claim = self.objects.filter(key=FLUSH_KEY, kind=self.kind.MARK)
        if not claim.filter(touched__lte=_datetime(now)).update(touched=_datetime(now + hold)):
            try:
                with transaction.atomic(using=self.alias):
                    self.model(
                        key=FLUSH_KEY, kind=self.kind.MARK, data="0", touched=_datetime(now + hold)
                    ).save(using=self.alias, force_insert=True)
            except IntegrityError:
                return None
        return float(claim.values_list("data", flat=True).first() or 0)

    def flush_done(self, until: float) -> None:
        self.objects.filter(key=FLUSH_KEY, kind=self.kind.MARK).update(data=repr(until))
