"""Prometheus metrics (needs ``prometheus_client``; on with ``ACTIVE_USERS_PROMETHEUS``).

Gauges, read from the store when Prometheus scrapes:

- ``active_users_sessions``: active sessions of logged-in users (entries)
- ``active_users_users``: distinct active logged-in users
- ``active_users_visitors``: active anonymous visitors
- ``active_users_daily_users``: users seen in the last 24 hours (from last seen)
- ``active_users_dau``, ``active_users_wau``, ``active_users_mau``: distinct users today (in
  ``TIME_ZONE``), in the last 7 and 30 days (from history; with ``ACTIVE_USERS_HISTORY``)
- ``active_users_store_up``: 1 when the store answered the scrape, else 0
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.apps import apps

from active_users import api, clock
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.history import get_uniques


class ActiveUsersCollector:
    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        def gauge(name: str, text: str, value: float) -> Any:
            return GaugeMetricFamily(name, text, value=value)

        try:
            counts = api.get_active_counts()
        except StoreUnavailable:
            yield gauge("active_users_store_up", "Whether the store answered.", 0)
            return
        yield gauge("active_users_store_up", "Whether the store answered.", 1)
        yield gauge("active_users_sessions", "Active sessions of logged-in users.", counts.entries)
        yield gauge("active_users_users", "Distinct active logged-in users.", counts.users)
        yield gauge("active_users_visitors", "Active anonymous visitors.", counts.visitors)
        if conf.LAST_SEEN:
            from active_users.models import LastSeen

            since = clock.ago(timedelta(days=1))
            daily = LastSeen.objects.using(conf.DATABASE).filter(last_activity__gte=since)
            yield gauge(
                "active_users_daily_users", "Users seen in the last 24 hours.", daily.count()
            )
        if conf.HISTORY:
            try:
                uniques = get_uniques(days=0, months=0)
            except StoreUnavailable:
                return
            for name, text in (("dau", "today"), ("wau", "in the last 7 days"),
                               ("mau", "in the last 30 days")):  # fmt: skip
                yield gauge(f"active_users_{name}", f"Distinct users {text}.", uniques[name])

    def describe(self) -> list[Any]:
        return []  # no collection at registration time


_registered = False


def register(registry: Any = None) -> ActiveUsersCollector:
    """Register the collector (with the default registry unless one is given)."""
    from prometheus_client import REGISTRY

    collector = ActiveUsersCollector()
    (registry or REGISTRY).register(collector)
    return collector


def register_from_settings() -> None:
    global _registered
    if _registered or not conf.PROMETHEUS or not apps.is_installed("active_users"):
        return
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return
    register()
    _registered = True
