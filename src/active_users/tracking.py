"""Deciding what a request marks active, and handing it to the store without waiting for it.

The middleware hands every finished request to :data:`tracker`. It skips excluded paths,
users and crawlers. What is left is either

- a **refresh** of a presence this process wrote or buffered less than ``IDLE_AFTER``
  seconds ago (so the user cannot be coming back from offline, and no
  ``user_became_active`` is owed): at most once per ``TOUCH_INTERVAL`` it goes to the
  write-behind buffer (``backends/buffer.py``) and the request goes on; or
- a **first touch** (a presence new to this process, or back after ``IDLE_AFTER``): written
  at once, so a new user is counted immediately and ``user_became_active`` gets its request.
  While the store is failing (``backends/health.py``) it goes to the buffer instead.

A refresh is not held back by ``KEY_EXPIRE``: across a fleet each process sees a user only
every few of their requests, and a write at once for every gap longer than ``KEY_EXPIRE``
made most requests wait for the store. An entry that lapsed in such a gap is written again by
the next flush (within ``FLUSH_INTERVAL``).

Nothing here raises into the request.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty

from active_users.backends import Presence, get_backend
from active_users.backends.buffer import buffer
from active_users.backends.health import breaker
from active_users.conf import conf
from active_users.history import sampler
from active_users.keys import AbstractActiveUserEntry, ActiveUserEntry
from active_users.last_seen import flusher
from active_users.requests import hash_session_key, visitor_id
from active_users.signals import user_became_active

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger("active_users")

MAX_REMEMBERED = 100_000
DAY = 86400


@dataclass(frozen=True)
class Policy:
    """The settings the request path reads, resolved once and rebuilt when one changes."""

    exclude_url: re.Pattern[str] | None
    exclude_users: tuple[Any, ...]
    key_class: type[AbstractActiveUserEntry]
    track_anonymous: bool
    bots: re.Pattern[str] | None
    session_cookie: str
    #: A presence is refreshed at most this often per process.
    refresh_after: float
    #: A presence this process saw this long ago may be coming back from offline: the next
    #: request writes at once, so that ``user_became_active`` gets it.
    known_for: float

    @classmethod
    def current(cls) -> Policy:
        return cls(
            exclude_url=conf.exclude_url_regex,
            exclude_users=tuple(conf.EXCLUDE_USERS),
            key_class=conf.KEY_CLASS,
            track_anonymous=conf.TRACK_ANONYMOUS,
            bots=conf.bot_regex,
            session_cookie=settings.SESSION_COOKIE_NAME,
            refresh_after=conf.refresh_interval,
            known_for=conf.IDLE_AFTER,
        )

    def excludes_user(self, user: Any) -> bool:
        for rule in self.exclude_users:
            if rule == "staff":
                if user.is_staff:
                    return True
            elif rule in ("superuser", "superusers"):
                if user.is_superuser:
                    return True
            elif conf.import_callable(rule)(user):
                return True
        return False


Observed = tuple[Hashable, Presence]


class Tracker:
    def __init__(self) -> None:
        # What this process wrote or buffered lately: key -> (monotonic time, *presence).
        # Plain tuples of strings and numbers, which Python's garbage collector stops
        # tracking: what a process remembers of a thousand users adds nothing to the host's
        # full collections, whose pauses every request in flight waits out.
        self._known: dict[Hashable, tuple[float, str, str, str]] = {}
        self._policy: Policy | None = None

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = Policy.current()
        return self._policy

    def forget(self) -> None:
        """Drop what this process remembers (after a clear, or a settings change)."""
        self._known.clear()
        self._policy = None

    def needs_sync_context(self, request: HttpRequest) -> bool:
        """Whether reading the user may touch the database, which async code must not do."""
        user = getattr(request, "user", None)
        return isinstance(user, LazyObject) and user._wrapped is empty

    def observe(self, request: HttpRequest, refresh: bool = False) -> Observed | None:
        """What ``request`` marks active, with its key; None when excluded. With ``refresh``,
        also None when this process wrote it lately (its refresh, when due, is handed to the
        write-behind buffer): what is returned then is a first touch, to write at once."""
        policy = self.policy
        if policy.exclude_url is not None and policy.exclude_url.search(request.path):
            return None
        user = _unwrapped(getattr(request, "user", None))
        if user is not None and user.is_authenticated:
            if policy.exclude_users and policy.excludes_user(user):
                return None
            key = self._user_key(request, user, policy)
            if refresh and key is not None and self._refreshed(key, policy):
                return None
            presence = self._user_presence(request, user)
            if key is None:
                key = (presence.user_id, presence.member, presence.session)
                if refresh and self._refreshed(key, policy):
                    return None
            return key, presence
        observed = self._visitor(request, policy)
        if refresh and observed is not None and self._refreshed(observed[0], policy):
            return None
        return observed

    def _user_key(self, request: HttpRequest, user: Any, policy: Policy) -> Hashable | None:
        # The default entry is fixed by these request values: a repeated request is
        # recognised without building it (the session cookie, not ``session_key``, which
        # signed-cookie sessions compute anew on each access).
        if policy.key_class is not ActiveUserEntry:
            return None
        meta = request.META
        return (user.pk, request.COOKIES.get(policy.session_cookie),
                meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))  # fmt: skip

    def _user_presence(self, request: HttpRequest, user: Any) -> Presence:
        entry = self.policy.key_class.create_from_request(request)
        session = getattr(request, "session", None)
        hashed = hash_session_key(session.session_key) if session is not None else ""
        return Presence(entry.dump(), str(user.pk), hashed)

    def _visitor(self, request: HttpRequest, policy: Policy) -> Observed | None:
        if not policy.track_anonymous:
            return None
        meta = request.META
        agent = meta.get("HTTP_USER_AGENT", "")
        if policy.bots is not None and policy.bots.search(agent):
            return None
        day = int(time.time() // DAY)
        key = ("visitor", day, meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), agent)
        return key, Presence(visitor_id(request, day))

    def _refreshed(self, key: Hashable, policy: Policy) -> bool:
        """Whether ``key`` needs no write now: written lately, or its refresh buffered."""
        known = self._known.get(key)
        if known is None:
            return False
        now = time.monotonic()
        age = now - known[0]
        if age < policy.refresh_after:
            return True
        if age >= policy.known_for:
            return False
        _, member, user_id, session = known
        if buffer.add(Presence(member, user_id, session), time.time()):
            self._known[key] = (now, member, user_id, session)
        return True

    def _remember(self, key: Hashable, presence: Presence) -> None:
        if len(self._known) >= MAX_REMEMBERED:
            self._known.clear()
        self._known[key] = (time.monotonic(), presence.member, presence.user_id, presence.session)

    def _failed(self, key: Hashable, presence: Presence, exc: BaseException | None) -> None:
        """The store is failing: the buffer writes the touch when it answers again."""
        if exc is not None:
            breaker.failed(exc)
        if buffer.add(presence, time.time()):
            self._remember(key, presence)

    def _became_active(self, request: HttpRequest) -> None:
        user = request.user
        for receiver, result in user_became_active.send_robust(
            sender=type(user), user=user, request=request
        ):
            if isinstance(result, Exception):
                logger.error("active_users: %r failed", receiver, exc_info=result)

    def track(self, request: HttpRequest) -> None:
        """Record ``request``; never raises."""
        try:
            observed = self.observe(request, refresh=True)
        except Exception:
            logger.exception("active_users: could not build the entry for %s", request.path)
            return
        if observed is None:
            return
        key, presence = observed
        if not breaker.allows():
            self._failed(key, presence, None)
            return
        try:
            returning = get_backend().touch(presence)
        except Exception as exc:
            self._failed(key, presence, exc)
            return
        breaker.succeeded()
        self._remember(key, presence)
        if returning:
            self._became_active(request)
        background_work()

    async def atrack(self, request: HttpRequest) -> None:
        """Async twin of :meth:`track`."""
        try:
            if self.needs_sync_context(request):
                observed = await sync_to_async(self.observe)(request, refresh=True)
            else:
                observed = self.observe(request, refresh=True)
        except Exception:
            logger.exception("active_users: could not build the entry for %s", request.path)
            return
        if observed is None:
            return
        key, presence = observed
        if not breaker.allows():
            self._failed(key, presence, None)
            return
        try:
            returning = await get_backend().atouch(presence)
        except Exception as exc:
            self._failed(key, presence, exc)
            return
        breaker.succeeded()
        self._remember(key, presence)
        if returning:  # receivers are sync code
            await sync_to_async(self._became_active)(request)
        background_work()


def _unwrapped(user: Any) -> Any:
    """The user behind ``request.user``, loaded if it was not yet. Django's lazy proxy
    costs about a microsecond an attribute (each read raises and catches an
    ``AttributeError`` inside it): two reads were most of a steady request's time here."""
    if isinstance(user, LazyObject):
        if user._wrapped is empty:
            user._setup()
        return user._wrapped
    return user


tracker = Tracker()


def record_user(user: Any) -> None:
    """Record ``user`` as active now without a request of theirs (from a view or a task):
    through the tracker, as a request with no session and no address would be, so it is
    counted, last seen and signalled like any other. Never raises."""
    from django.http import HttpRequest

    if user is None or not user.is_authenticated:
        return
    request = HttpRequest()
    request.user = user
    tracker.track(request)


def background_work() -> None:
    """Start the last-seen flush and the history sampler when they are due (each checks a
    clock and returns)."""
    flusher.maybe_flush()
    sampler.maybe_sample()


buffer.after_flush.append(background_work)
buffer.on_clear.append(tracker.forget)


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ACTIVE_USERS_") or setting in {"SESSION_COOKIE_NAME", "CACHES"}:
        tracker.forget()


setting_changed.connect(_setting_changed)
