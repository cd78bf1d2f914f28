"""Client-side activity: reading, checking and storing the events posted to ``log/``.

Every problem is a :class:`~active_users.exceptions.BadRequest` naming the field; nothing of
a request is stored unless all of its events are valid.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core.cache import caches
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from active_users import clock
from active_users.conf import conf
from active_users.exceptions import BadRequest
from active_users.faults import warn_once
from active_users.inputs import parse_json
from active_users.requests import get_client_ip, hash_session_key, stored_ip

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.http import HttpRequest

logger = logging.getLogger("active_users")

MAX_PATH = 2000
MAX_REFERER = 2000
MAX_USER_AGENT = 512
MAX_EVENT_NAME = 32
MAX_REMEMBERED_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Event:
    event: str
    date: datetime
    path: str
    referer: str


def _text(field: str, value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(field, f"must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise BadRequest(field, f"longer than {limit} characters ({len(value)})")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadRequest(field, "contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(field, "is not valid Unicode") from None
    return value


def _date(value: Any, now: datetime, naive_ok: bool = False) -> datetime:
    if value is None or value == "":
        raise BadRequest(
            "date", "required: when the event happened, ISO 8601 (2026-11-22T10:00:00Z)"
        )
    text = _text("date", value, 64)
    moment = clock.parse(text)
    if moment is None:
        raise BadRequest("date", f"not an ISO 8601 date and time: {text!r}")
    if timezone.is_naive(moment):
        if not naive_ok:  # a JSON client's zone is unknown: guessing would shift it
            raise BadRequest("date", "needs a time zone offset, e.g. Z or +01:00")
        # A form's naive date is in the current time zone, as Django's forms and DRF read it.
        moment = clock.from_client(moment)
    ahead = -clock.seconds_since(moment, now)
    if abs(ahead) > conf.ACTIVITY_MAX_SKEW:
        raise BadRequest(
            "date",
            f"{abs(ahead):.0f} seconds from the server's clock; at most "
            f"{conf.ACTIVITY_MAX_SKEW:.0f} are allowed",
        )
    # A date ahead of the server's clock is stored as the time the event arrived, so that
    # no client can keep its events in the "now" windows of the dashboard.
    return now if ahead > 0 else clock.normalize(moment)


def _path_from_referer(request: HttpRequest) -> str:
    referer = str(request.META.get("HTTP_REFERER", ""))
    if not referer:
        return ""
    try:
        parts = urlsplit(referer)
    except ValueError:  # an unbalanced [ in the host: no page to take a path from
        return ""
    if not parts.path.startswith("/"):  # not a URL of a page: nothing to log
        return ""
    return parts.path + (f"?{parts.query}" if parts.query else "")


def read_event(
    data: Mapping[str, Any], request: HttpRequest, now: datetime, form: bool = False
) -> Event:
    """One event. A form (django-djaffar's shape) may send a naive date, and needs a path:
    its own, or the ``Referer``'s."""
    date = _date(data.get("date"), now, naive_ok=form)
    name = data.get("event") or "pageview"
    name = _text("event", name, MAX_EVENT_NAME)
    if name not in conf.ACTIVITY_EVENTS:
        known = ", ".join(sorted(conf.ACTIVITY_EVENTS))
        raise BadRequest("event", f"unknown event {name!r}; use one of {known}")
    path = _text("path", data.get("path"), MAX_PATH) or _text(
        "path", _path_from_referer(request), MAX_PATH
    )
    if form and not path:
        raise BadRequest("path", "required: the page's path, or a Referer header with one")
    referer = _text("referer", data.get("referer"), MAX_REFERER)
    return Event(event=name, date=date, path=path, referer=referer)


def check_size(request: HttpRequest) -> None:
    """Refuse a body over ``ACTIVITY_MAX_BODY`` before anything reads it."""
    limit = conf.ACTIVITY_MAX_BODY
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("body", "Content-Length is not a number") from None
    if length > limit:
        raise BadRequest("body", f"{length} bytes; at most {limit} are accepted", status=413)


def read_events(request: HttpRequest) -> list[Event]:
    """The events of a request: a JSON object, a JSON list of objects, or a form."""
    limit = conf.ACTIVITY_MAX_BODY
    _text("user agent", request.META.get("HTTP_USER_AGENT", ""), MAX_USER_AGENT)
    now = clock.now()
    if request.content_type == "application/json":
        payload = parse_json(request.body, "body", max_bytes=limit)
        items = payload if isinstance(payload, list) else [payload]
        if not items or not all(isinstance(item, dict) for item in items):
            raise BadRequest("body", "expected a JSON object, or a list of objects")
        if len(items) > conf.ACTIVITY_MAX_EVENTS:
            raise BadRequest("body", f"{len(items)} events; at most {conf.ACTIVITY_MAX_EVENTS}")
        return [read_event(item, request, now) for item in items]
    return [read_event(request.POST, request, now, form=True)]


def _rate_subject(request: HttpRequest) -> str:
    """Whom the rate limit counts: a session that exists (a made-up cookie loads nothing, so a
    client cannot mint buckets), else the client's IP after trusted proxies."""
    session = getattr(request, "session", None)
    if session is not None:
        try:
            loaded = bool(session.keys())  # one query, that the user check would make anyway
        except Exception:  # a session store that is down: count by address
            loaded = False
        if loaded and session.session_key:
            return f"session:{session.session_key}"
    return f"ip:{get_client_ip(request) or ''}"


def _count(key: str, seconds: int) -> int:
    cache = caches[conf.CACHE]
    cache.add(key, 0, timeout=seconds + 1)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=seconds + 1)
        return 1


def rate_limited(request: HttpRequest) -> int | None:
    """Seconds to wait when this session (or IP) is over ``ACTIVITY_RATE_LIMIT``. The cache
    key holds a keyed hash of who it counts, never a session key or an IP. A cache that
    fails lets the request through, with one warning per outage."""
    rate = conf.ACTIVITY_RATE_LIMIT
    if rate is None:
        return None
    count, seconds = rate
    who = salted_hmac("active_users.rate", _rate_subject(request), algorithm="sha256")
    now = time.time()
    window = int(now // seconds)
    try:
        used = _count(f"active_users:rate:{who.hexdigest()[:32]}:{window}", seconds)
    except Exception as exc:  # the cache is down: the limit fails open, the events are kept
        warn_once(f"the log/ rate limit is off while its cache {conf.CACHE!r} fails", exc)
        return None
    if used > count:
        return max(1, int((window + 1) * seconds - now) + 1)
    return None


_sessions_written: dict[str, None] = {}


def store(request: HttpRequest, events: list[Event]) -> int:
    """Save the events (one multi-row insert) and the session's user agent."""
    from active_users.models import Activity, SessionInfo

    user = getattr(request, "user", None)
    user = user if user is not None and user.is_authenticated else None
    session = getattr(request, "session", None)
    session_hash = hash_session_key(getattr(session, "session_key", None))
    ip = stored_ip(request)
    rows = [
        Activity(user=user, session=session_hash, ip=ip, date=e.date, event=e.event,
                 path=e.path, referer=e.referer)
        for e in events
    ]  # fmt: skip
    alias = conf.DATABASE
    with transaction.atomic(using=alias):
        Activity.objects.using(alias).bulk_create(rows)
        if session_hash and session_hash not in _sessions_written:
            agent = request.META.get("HTTP_USER_AGENT", "")
            SessionInfo.objects.using(alias).bulk_create(
                [SessionInfo(session=session_hash, user_agent=agent)], ignore_conflicts=True
            )
    if session_hash:
        if len(_sessions_written) >= MAX_REMEMBERED_SESSIONS:
            _sessions_written.clear()
        _sessions_written[session_hash] = None
    return len(rows)


def retention_cutoff(days: int) -> datetime:
    return clock.ago(days * 86400)
