"""Time: every datetime the package creates, parses, compares or queries goes through here.

The stores keep UNIX seconds (Redis scores, ``time.time()``). Datetimes take the form Django
gives them under ``USE_TZ``: aware when it is on; naive, in ``TIME_ZONE``, when it is off
(the form the database stores and compares them in). A naive value is always read in
``TIME_ZONE``, as Django reads naive values from the database. JSON and exports always
write UTC with an offset, so a browser or a script reads the same instant whatever the
site's setting.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, tzinfo
from datetime import timezone as _tz

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def _zone() -> tzinfo:
    return timezone.get_default_timezone()


def from_timestamp(stamp: float) -> datetime:
    """The datetime of UNIX time ``stamp``: aware (UTC) when ``USE_TZ``, else naive local."""
    moment = datetime.fromtimestamp(stamp, tz=_tz.utc)
    if settings.USE_TZ:
        return moment
    return moment.astimezone(_zone()).replace(tzinfo=None)


def now() -> datetime:
    """This instant, as :func:`from_timestamp` gives it."""
    return from_timestamp(time.time())


def ago(delta: timedelta | float) -> datetime:
    """The instant ``delta`` (a timedelta or seconds) before now: elapsed time, so a naive
    local value stays exact across a daylight-saving change."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    return from_timestamp(time.time() - seconds)


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone; a naive value is read in ``TIME_ZONE``."""
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=_zone())
    return moment


def to_timestamp(moment: datetime) -> float:
    """UNIX seconds of ``moment`` (aware, or naive in ``TIME_ZONE``)."""
    return aware(moment).timestamp()


def seconds_since(moment: datetime, now: datetime | None = None) -> float:
    """Seconds from ``moment`` to ``now`` (default: this instant); either form may be mixed."""
    until = time.time() if now is None else to_timestamp(now)
    return until - to_timestamp(moment)


def normalize(moment: datetime) -> datetime:
    """``moment`` in this setting's form: comparable with :func:`now`, usable in a query."""
    if settings.USE_TZ:
        return aware(moment)
    if timezone.is_aware(moment):
        return timezone.make_naive(moment, _zone())
    return moment


def from_client(moment: datetime) -> datetime:
    """A date and time typed or sent by someone, in this setting's form. A naive value is
    read in the current time zone when ``USE_TZ`` is on (as Django's forms read it), as
    local time when it is off; an aware one is converted."""
    if settings.USE_TZ and timezone.is_naive(moment):
        return timezone.make_aware(moment)
    return normalize(moment)


def parse(text: str, *, allow_date: bool = False) -> datetime | None:
    """An ISO 8601 date and time as written (aware or naive), or None if ``text`` is not
    one; with ``allow_date``, a bare date means its midnight (naive)."""
    try:
        moment = parse_datetime(text)
        if moment is None and allow_date and (day := parse_date(text)) is not None:
            moment = datetime(day.year, day.month, day.day)
    except ValueError:  # well formed but impossible: 2026-02-30
        return None
    return moment


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with its offset (``2026-11-22T10:00:00+00:00``), for JSON and files."""
    return aware(moment).astimezone(_tz.utc).isoformat()


def local_day(stamp: float) -> tuple[date, float, float]:
    """The calendar day in ``TIME_ZONE`` that UNIX time ``stamp`` falls in, with the UNIX
    times of its start and of the next day's start."""
    zone = _zone()
    day = datetime.fromtimestamp(stamp, tz=zone).date()
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return day, start.timestamp(), (start + timedelta(days=1)).timestamp()
