"""Deciding what a request marks active, and writing it without ever failing the request.

The middleware hands every finished request to :data:`tracker`. It skips excluded paths,
users and bots, skips the write when this process wrote the same entry less than
``ACTIVE_USERS_TOUCH_INTERVAL`` seconds ago, and otherwise makes one call to the backend,
guarded by a circuit breaker: a failing store is left alone for
``ACTIVE_USERS_FAILURE_COOLDOWN`` seconds and logged once per outage.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty

from active_users.backends import Presence, get_backend
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.keys import ActiveUserEntry
from active_users.requests import hash_session_key
from active_users.signals import user_became_active

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger("active_users")

VISITOR_SESSION_KEY = "_active_users_visitor"
MAX_REMEMBERED = 100_000
Observed = tuple[Hashable, Presence]


class CircuitBreaker:
    """Stops calling a failing store for a cool-down, and logs once per outage."""

    def __init__(self) -> None:
        self.failing = False
        self.retry_at = 0.0

    def allows(self) -> bool:
        return not self.failing or time.monotonic() >= self.retry_at

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            logger.warning("active_users: the store answers again; tracking resumed")

    def failed(self, exc: BaseException) -> None:
        self.retry_at = time.monotonic() + conf.FAILURE_COOLDOWN
        if not self.failing:
            self.failing = True
            logger.warning(
                "active_users: the store failed (%s: %s); requests are served without "
                "tracking until it answers again",
                type(exc).__name__,
                exc,
            )


@dataclass(frozen=True)
class Policy:
    """The settings the request path reads, resolved once and rebuilt when one changes."""

    exclude_url: re.Pattern[str] | None
    exclude_users: tuple[Any, ...]
    key_class: type
    track_anonymous: bool
    bots: re.Pattern[str] | None
    touch_interval: float
    session_cookie: str

    @classmethod
    def current(cls) -> Policy:
        return cls(
            exclude_url=conf.exclude_url_regex,
            exclude_users=tuple(conf.EXCLUDE_USERS),
            key_class=conf.KEY_CLASS,
            track_anonymous=conf.TRACK_ANONYMOUS,
            bots=conf.bot_regex,
            touch_interval=conf.TOUCH_INTERVAL,
            session_cookie=settings.SESSION_COOKIE_NAME,
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


class Tracker:
    def __init__(self) -> None:
        self.breaker = CircuitBreaker()
        # What this process wrote lately: throttle key -> monotonic time of the write.
        self._written: dict[Hashable, float] = {}
        self._policy: Policy | None = None

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = Policy.current()
        return self._policy

    def forget(self) -> None:
        """Drop what this process remembers (after a clear, or a settings change)."""
        self._written.clear()
        self._policy = None

    def needs_sync_context(self, request: HttpRequest) -> bool:
        """Whether building the entry may touch the database (an unevaluated user, a session
        to create), which async code must not do directly."""
        user = getattr(request, "user", None)
        if isinstance(user, LazyObject) and user._wrapped is empty:
            return True
        return self.policy.track_anonymous and not getattr(user, "is_authenticated", False)

    def observe(self, request: HttpRequest, due_only: bool = True) -> Observed | None:
        """What ``request`` marks active, with its throttle key; None when nothing is to be
        written (excluded, or ``due_only`` and written lately by this process)."""
        policy = self.policy
        if policy.exclude_url is not None and policy.exclude_url.search(request.path):
            return None
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and user.is_authenticated:
            if policy.exclude_users and policy.excludes_user(user):
                return None
            # The default entry is fixed by these request values: a repeated request is
            # recognised without building it (the session cookie, not ``session_key``, which
            # signed-cookie sessions compute anew on each access).
            quick: Hashable | None = None
            if policy.key_class is ActiveUserEntry:
                meta = request.META
                quick = (user.pk, request.COOKIES.get(policy.session_cookie),
                         meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))  # fmt: skip
                if due_only and not self._due(quick, policy):
                    return None
            entry = policy.key_class.create_from_request(request)
            presence = Presence(entry.dump(), str(user.pk))
            key = quick if quick is not None else (presence.user_id, presence.member)
            if quick is None and due_only and not self._due(key, policy):
                return None
            return key, presence
        if not policy.track_anonymous or session is None:
            return None
        if policy.bots is not None and policy.bots.search(request.META.get("HTTP_USER_AGENT", "")):
            return None
        if not session.session_key:
            # A visitor is counted by session; give a new visitor one.
            session[VISITOR_SESSION_KEY] = ""
            session.save()
        key = ("visitor", session.session_key)
        if due_only and not self._due(key, policy):
            return None
        member = hash_session_key(session.session_key)
        if session.get(VISITOR_SESSION_KEY) != member:
            # Remembered in the session, which survives login, so that logging in ends the
            # visitor at once (the user is counted from then on).
            session[VISITOR_SESSION_KEY] = member
        return key, Presence(member)

    def _due(self, key: Hashable, policy: Policy) -> bool:
        last = self._written.get(key)
        return last is None or time.monotonic() - last >= policy.touch_interval

    def forget_key(self, key: Hashable) -> None:
        self._written.pop(key, None)

    def _wrote(self, key: Hashable) -> None:
        if len(self._written) >= MAX_REMEMBERED:
            self._written.clear()
        self._written[key] = time.monotonic()

    def _done(self, request: HttpRequest, key: Hashable, returning: bool) -> None:
        from active_users.history import sampler
        from active_users.last_seen import flusher

        self.breaker.succeeded()
        self._wrote(key)
        if returning:
            user = request.user
            for receiver, result in user_became_active.send_robust(
                sender=type(user), user=user, request=request
            ):
                if isinstance(result, Exception):
                    logger.error("active_users: %r failed", receiver, exc_info=result)
        flusher.maybe_flush()
        sampler.maybe_sample()

    def track(self, request: HttpRequest) -> None:
        """Record ``request``; never raises."""
        try:
            observed = self.observe(request)
        except Exception:
            logger.exception("active_users: could not build the entry for %s", request.path)
            return
        if observed is None or not self.breaker.allows():
            return
        key, presence = observed
        try:
            returning = get_backend().touch(presence)
        except Exception as exc:
            self.breaker.failed(exc)
            return
        self._done(request, key, returning)

    async def atrack(self, request: HttpRequest) -> None:
        """Async twin of :meth:`track`."""
        try:
            if self.needs_sync_context(request):
                observed = await sync_to_async(self.observe)(request)
            else:
                observed = self.observe(request)
        except Exception:
            logger.exception("active_users: could not build the entry for %s", request.path)
            return
        if observed is None or not self.breaker.allows():
            return
        key, presence = observed
        try:
            returning = await get_backend().atouch(presence)
        except Exception as exc:
            self.breaker.failed(exc)
            return
        if returning:  # receivers are sync code
            await sync_to_async(self._done)(request, key, returning)
        else:
            self._done(request, key, returning)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Guard a read: :class:`StoreUnavailable` when the store fails or is known down."""
        if not self.breaker.allows():
            raise StoreUnavailable("the active users store is not answering")
        try:
            yield
        except (ValueError, TypeError, StoreUnavailable):
            raise
        except Exception as exc:
            self.breaker.failed(exc)
            raise StoreUnavailable(f"the active users store failed: {exc}") from exc
        self.breaker.succeeded()


tracker = Tracker()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES", "TIME_ZONE"}:
        from active_users.backends import base
        from active_users.history import sampler
        from active_users.last_seen import flusher

        tracker.forget()
        tracker.breaker = CircuitBreaker()
        flusher.reset()
        sampler.reset()
        base.forget_day()


def _logged_out(*, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """A user who logs out leaves the active list at once."""
    if user is None or request is None:
        return
    try:
        observed = tracker.observe(request, due_only=False)
        if observed is not None and not observed[1].anonymous:
            tracker.forget_key(observed[0])
            with tracker.reading():
                get_backend().remove(observed[1])
    except Exception:
        logger.warning("active_users: could not remove the entry of a user who logged out")


def _logged_in(*, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """A visitor who logs in stops being counted as an anonymous visitor at once."""
    session = getattr(request, "session", None)
    member = session.get(VISITOR_SESSION_KEY) if session is not None else None
    if not member:
        return
    try:
        with tracker.reading():
            get_backend().remove(Presence(member))
    except Exception:
        logger.warning("active_users: could not remove the visitor entry of a user who logged in")


def _user_deleted(*, instance: Any, **kwargs: Any) -> None:
    """A deleted user leaves nothing behind in the live store."""
    try:
        with tracker.reading():
            get_backend().remove_user(str(instance.pk))
    except Exception:
        logger.warning(
            "active_users: could not remove the live entries of deleted user %s", instance.pk
        )


def connect_signals() -> None:
    """Connect the logout and user-deletion receivers (idempotent)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_in, user_logged_out
    from django.db.models.signals import post_delete

    user_logged_in.connect(_logged_in, dispatch_uid="active_users.login")
    user_logged_out.connect(_logged_out, dispatch_uid="active_users.logout")
    post_delete.connect(_user_deleted, sender=get_user_model(), dispatch_uid="active_users.delete")


setting_changed.connect(_setting_changed)
