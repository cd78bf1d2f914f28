"""Deciding what a request marks active, and writing it without ever failing the request.

The middleware hands every finished request to :data:`tracker`. It skips excluded paths,
users and bots, skips the write when this process wrote the same entry less than
``ACTIVE_USERS_TOUCH_INTERVAL`` seconds ago, and otherwise makes one call to the backend,
guarded by a circuit breaker: a failing store is left alone for
``ACTIVE_USERS_FAILURE_COOLDOWN`` seconds and logged once per outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty

from active_users.backends import Presence, get_backend
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.requests import hash_session_key
from active_users.signals import user_became_active

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger("active_users")

VISITOR_SESSION_KEY = "_active_users_visitor"
MAX_REMEMBERED = 100_000


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


def _excluded_user(user: Any) -> bool:
    for rule in conf.EXCLUDE_USERS:
        if rule == "staff":
            if user.is_staff:
                return True
        elif rule in ("superuser", "superusers"):
            if user.is_superuser:
                return True
        elif conf.import_callable(rule)(user):
            return True
    return False


def _needs_sync_context(request: HttpRequest) -> bool:
    """Whether building the entry may touch the database (an unevaluated user, a session
    to create), which async code must not do directly."""
    user = getattr(request, "user", None)
    if isinstance(user, LazyObject) and user._wrapped is empty:
        return True
    return conf.TRACK_ANONYMOUS and not getattr(user, "is_authenticated", False)


class Tracker:
    def __init__(self) -> None:
        self.breaker = CircuitBreaker()
        self._written: dict[tuple[str, str], float] = {}

    def forget(self) -> None:
        """Drop what this process remembers writing (after a clear, or a settings change)."""
        self._written.clear()

    def observe(self, request: HttpRequest) -> Presence | None:
        """What ``request`` marks active, or None."""
        regex = conf.exclude_url_regex
        if regex is not None and regex.search(request.path):
            return None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if conf.EXCLUDE_USERS and _excluded_user(user):
                return None
            entry = conf.KEY_CLASS.create_from_request(request)
            return Presence(entry.dump(), str(user.pk))
        if not conf.TRACK_ANONYMOUS:
            return None
        bots = conf.bot_regex
        if bots is not None and bots.search(request.META.get("HTTP_USER_AGENT", "")):
            return None
        session = getattr(request, "session", None)
        if session is None:
            return None
        if not session.session_key:
            # A visitor is counted by session; give a new visitor one.
            session[VISITOR_SESSION_KEY] = True
            session.save()
        return Presence(hash_session_key(session.session_key))

    def _due(self, presence: Presence) -> bool:
        last = self._written.get((presence.user_id, presence.member))
        return last is None or time.monotonic() - last >= conf.TOUCH_INTERVAL

    def forget_presence(self, presence: Presence) -> None:
        self._written.pop((presence.user_id, presence.member), None)

    def _wrote(self, presence: Presence) -> None:
        if len(self._written) >= MAX_REMEMBERED:
            self._written.clear()
        self._written[(presence.user_id, presence.member)] = time.monotonic()

    def _pending(self, presence: Presence | None) -> bool:
        return presence is not None and self._due(presence) and self.breaker.allows()

    def _failed(self, exc: Exception) -> None:
        self.breaker.failed(exc)

    def _done(self, request: HttpRequest, presence: Presence, returning: bool) -> None:
        from active_users.last_seen import flusher

        self.breaker.succeeded()
        self._wrote(presence)
        if returning:
            user = request.user
            for receiver, result in user_became_active.send_robust(
                sender=type(user), user=user, request=request
            ):
                if isinstance(result, Exception):
                    logger.error("active_users: %r failed", receiver, exc_info=result)
        flusher.maybe_flush()

    def track(self, request: HttpRequest) -> None:
        """Record ``request``; never raises."""
        try:
            presence = self.observe(request)
        except Exception:
            logger.exception("active_users: could not build the entry for %s", request.path)
            return
        if presence is None or not self._pending(presence):
            return
        try:
            returning = get_backend().touch(presence)
        except Exception as exc:
            self._failed(exc)
            return
        self._done(request, presence, returning)

    async def atrack(self, request: HttpRequest) -> None:
        """Async twin of :meth:`track`."""
        try:
            if _needs_sync_context(request):
                presence = await sync_to_async(self.observe)(request)
            else:
                presence = self.observe(request)
        except Exception:
            logger.exception("active_users: could not build the entry for %s", request.path)
            return
        if presence is None or not self._pending(presence):
            return
        try:
            returning = await get_backend().atouch(presence)
        except Exception as exc:
            self._failed(exc)
            return
        if returning:  # receivers are sync code
            await sync_to_async(self._done)(request, presence, returning)
        else:
            self._done(request, presence, returning)

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
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES"}:
        from active_users.last_seen import flusher

        tracker.forget()
        tracker.breaker = CircuitBreaker()
        flusher.reset()


def _logged_out(*, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """A user who logs out leaves the active list at once."""
    if user is None or request is None:
        return
    try:
        presence = tracker.observe(request)
        if presence is not None and not presence.anonymous:
            tracker.forget_presence(presence)
            with tracker.reading():
                get_backend().remove(presence)
    except Exception:
        logger.warning("active_users: could not remove the entry of a user who logged out")


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
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import post_delete

    user_logged_out.connect(_logged_out, dispatch_uid="active_users.logout")
    post_delete.connect(_user_deleted, sender=get_user_model(), dispatch_uid="active_users.delete")


setting_changed.connect(_setting_changed)
