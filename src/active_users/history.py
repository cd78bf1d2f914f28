"""History: how many were active each minute, and distinct users per day, week and month.

No cron is needed. Each minute, the first process of the fleet to record a request in it
claims the minute (``backend.claim_minute``) and, in a background thread, stores the live
counts as the minute's sample; the store keeps each hour's peaks beside them
(``backend.record_sample``). Distinct users and visitors per day and month are kept by the
write path itself: on Redis the touch script adds a person to the day's and month's
HyperLogLog the first time they are seen that day; on the database one row per person and
day (``models.DailyUnique``). Retention: ``ACTIVE_USERS_HISTORY_MINUTE_RETENTION`` hours of
minutes (48), ``ACTIVE_USERS_HISTORY_DAY_RETENTION`` days of hours and uniques (400).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.core.signals import setting_changed

from active_users import clock
from active_users.backends import Sample, get_backend
from active_users.backends.base import day_of
from active_users.backends.health import reading
from active_users.background import BackgroundJob
from active_users.conf import conf

# name: (seconds covered, seconds per point); up to 48 hours by minute, beyond by hour.
RANGES = {
    "1h": (3600, 60),
    "24h": (86400, 60),
    "7d": (7 * 86400, 3600),
    "30d": (30 * 86400, 3600),
}
WINDOWS = {"dau": 1, "wau": 7, "mau": 30}


@dataclass(frozen=True, slots=True)
class Point:
    time: datetime
    entries: int
    users: int
    visitors: int

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["time"] = clock.iso(self.time)
        return found


def record_minute(now: float | None = None) -> Sample | None:
    """Sample the current minute unless another process did; return the sample taken."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    backend = get_backend()
    if not backend.claim_minute(minute):
        return None
    counts = backend.counts(now)
    sample = Sample(minute * 60, counts.entries, counts.users, counts.visitors)
    backend.record_sample(sample)
    return sample


class Sampler(BackgroundJob):
    """Starts :func:`record_minute` in a background thread once per minute per process."""

    name = "active-users-history"
    failure = "active_users: could not record the minute's sample"

    def __init__(self) -> None:
        super().__init__()
        self.minute: int | None = None

    def reset(self) -> None:
        self.minute = None

    def maybe_sample(self) -> None:
        minute = int(time.time() // 60)
        if minute == self.minute or not conf.HISTORY or self.running:
            return
        self.minute = minute
        self.start()

    def run(self) -> None:
        record_minute()


sampler = Sampler()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES", "TIME_ZONE"}:
        sampler.reset()


setting_changed.connect(_setting_changed)


def get_history(period: str = "24h", now: float | None = None) -> list[Point]:
    """Active counts over ``period`` (``"1h"``, ``"24h"``, ``"7d"`` or ``"30d"``), oldest
    first, one point per minute (per hour beyond 24 hours, the hour's peaks), every point
    present: a minute nobody was recorded in keeps the previous sample while that sample's
    people would still count as active (``KEY_EXPIRE``), then shows 0. The current minute,
    if not sampled yet, is sampled by this read. One round trip or one query (plus the
    sample, at most once a minute). ``ValueError`` for an unknown range."""
    if period not in RANGES:
        raise ValueError(f"range must be one of {', '.join(RANGES)}")
    span, step = RANGES[period]
    now = time.time() if now is None else now
    last = int(now // step) * step
    first = last - span + step
    with reading():
        found = {s.start: s for s in get_backend().samples(step == 3600, first, last)}
        if conf.HISTORY and step == 60 and last not in found:  # not sampled yet: do it now
            sample = record_minute(now)
            if sample is not None:
                found[sample.start] = sample
    points, previous = [], None
    for start in range(first, last + 1, step):
        sample = found.get(start)
        if sample is not None:
            previous = sample
        elif previous is not None and start - previous.start < conf.KEY_EXPIRE:
            sample = previous
        counts = (sample.entries, sample.users, sample.visitors) if sample else (0, 0, 0)
        points.append(Point(clock.from_timestamp(start), *counts))
    return points


def get_uniques(days: int = 30, months: int = 12, now: float | None = None) -> dict[str, Any]:
    """Distinct users and visitors: ``dau`` (today so far, in ``TIME_ZONE``), ``wau`` (the
    last 7 days), ``mau`` (the last 30 days), ``dau_mau`` (``dau / mau``, 0.0 without
    users), and per-day and per-month series, oldest first. One round trip on Redis
    (HyperLogLog: within about 1 % of the exact count), three queries on the database
    (exact)."""
    if not 0 <= days <= 400 or not 0 <= months <= 24:
        raise ValueError("days must be from 0 to 400 and months from 0 to 24")
    today = day_of(time.time() if now is None else now).date
    with reading():
        found = get_backend().uniques(today, days, months, list(WINDOWS.values()))
    result: dict[str, Any] = {"today": today.isoformat()}
    for name, window in WINDOWS.items():
        users, visitors = found.windows[window]
        result[name] = users
        result[f"{name}_visitors"] = visitors
    result["dau_mau"] = round(result["dau"] / result["mau"], 4) if result["mau"] else 0.0
    result["days"] = [{"date": d.isoformat(), "users": u, "visitors": v} for d, u, v in found.days]
    result["months"] = [
        {"month": m.isoformat()[:7], "users": u, "visitors": v} for m, u, v in found.months
    ]
    return result


def clear_history() -> None:
    """Forget samples and uniques."""
    with reading():
        get_backend().clear_history()
    sampler.reset()
