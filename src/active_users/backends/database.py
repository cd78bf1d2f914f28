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
from django.db import connections

from active_users.backends.base import (
    BaseBackend,
    Counts,
    Page,
    Presence,
    decode_cursor,
    encode_cursor,
)
from active_users.conf import conf


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

    def touch(self, presence: Presence, now: float | None = None) -> None:
        rows = self._rows(presence, _datetime(time.time() if now is None else now))
        with_target = connections[self.alias].features.supports_update_conflicts_with_target
        self.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["key"] if with_target else None,
            update_fields=["touched"],
        )

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
        stale = self.objects.filter(touched__lte=_datetime(self.cutoff(now)))
        deleted = 0
        while True:
            ids = list(stale.values_list("id", flat=True)[:batch_size])
            if not ids:
                return deleted
            deleted += self.objects.filter(id__in=ids).delete()[0]
