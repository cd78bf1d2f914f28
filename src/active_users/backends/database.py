"""Database backend: one row per entry, upserted on each touch, counted by time.

Counting and paging are range scans of the ``(anonymous, touched, id)`` index. Pages use
keyset pagination on ``(touched, id)``, so a deep page costs what the first one does.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
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


def _key(presence: Presence) -> str:
    kind = b"v" if presence.anonymous else b"u"
    return hashlib.blake2b(kind + presence.member.encode(), digest_size=20).hexdigest()


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
        from active_users.models import ActiveEntry

        self.model = ActiveEntry
        self.alias = conf.DATABASE

    @property
    def objects(self):  # type: ignore[no-untyped-def]
        return self.model.objects.using(self.alias)

    def touch(self, presence: Presence, now: float | None = None) -> None:
        row = self.model(
            key=_key(presence),
            anonymous=presence.anonymous,
            user_key=presence.user_id,
            data=presence.member,
            touched=_datetime(time.time() if now is None else now),
        )
        with_target = connections[self.alias].features.supports_update_conflicts_with_target
        self.objects.bulk_create(
            [row],
            update_conflicts=True,
            unique_fields=["key"] if with_target else None,
            update_fields=["touched"],
        )

    def _live(self, now: float | None, anonymous: bool = False):  # type: ignore[no-untyped-def]
        return self.objects.filter(anonymous=anonymous, touched__gt=_datetime(self.cutoff(now)))

    def counts(self, now: float | None = None) -> Counts:
        live = self._live(now)
        return Counts(
            entries=live.count(),
            users=live.values("user_key").distinct().count(),
            visitors=self._live(now, anonymous=True).count(),
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
            rows = rows.filter(Q(touched__lt=moment) | Q(touched=moment, id__lt=last_id))
        found = list(rows.values_list("data", "touched", "id")[: limit + 1])
        page = Page(items=[(data, _timestamp(touched)) for data, touched, _ in found[:limit]])
        if len(found) > limit:
            _, touched, last_id = found[limit - 1]
            page.next_cursor = encode_cursor(touched.isoformat(), last_id)
        return page

    def members(self, now: float | None = None) -> list[str]:
        return list(self._live(now).order_by("-touched", "-id").values_list("data", flat=True))

    def remove(self, presence: Presence) -> None:
        self.objects.filter(key=_key(presence)).delete()

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
