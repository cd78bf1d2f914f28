"""What a failing store, database or cache looks like from outside: one guard for each kind
of entry point (see docs/faults.md for the whole table).

- JSON views (:func:`json_guard`): 503 with ``{"error": "…"}`` naming what failed;
- management commands (:class:`GuardedCommand`): a one-line ``CommandError``;
- reads that can do without the database (:func:`database_optional`): the live store's
  answer alone.

Only the live store's own failures count towards its circuit breaker (``backends/health.py``):
nothing here touches it, so a database or cache outage never stops tracking.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError
from django.core.signals import setting_changed
from django.db import Error as DatabaseError  # InterfaceError too (a dead connection)
from django.http import HttpRequest, HttpResponse, JsonResponse

from active_users.exceptions import StoreUnavailable

Answer = TypeVar("Answer", bound=HttpResponse)

logger = logging.getLogger("active_users")


def what_failed(exc: BaseException) -> str | None:
    """What ``exc`` says failed, or None when it is not a store, database or cache failure.

    redis-py is not imported for this: a Redis error can only come from a process that
    already imported it (a Redis cache of the project's; the live store's are wrapped), and
    a site on the database backend keeps redis-py's hundred modules out of its heap."""
    if isinstance(exc, StoreUnavailable):
        return "The active users store"
    if isinstance(exc, DatabaseError):
        return "The database"
    redis_errors = sys.modules.get("redis.exceptions")
    if redis_errors is not None and isinstance(exc, redis_errors.RedisError):
        return "The cache"
    if isinstance(exc, ConnectionError):  # memcached and other socket-based caches
        return "The cache"
    return None


_warned: dict[str, float] = {}
WARN_EVERY = 60.0


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def warn_once(what: str, exc: BaseException) -> None:
    """One warning per kind of failure and minute, not one per request."""
    now = time.monotonic()
    if now - _warned.get(what, -WARN_EVERY) >= WARN_EVERY:
        _warned[what] = now
        logger.warning("active_users: %s (%s: %s)", what, type(exc).__name__, exc)


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES"}:
        _warned.clear()  # a new configuration: its first failure is worth a line


setting_changed.connect(_setting_changed)


def json_guard(view: Callable[..., Answer]) -> Callable[..., Answer | JsonResponse]:
    """A view whose store, database or cache fails answers 503 ``{"error": …}``."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Answer | JsonResponse:
        try:
            return view(request, *args, **kwargs)
        except Exception as exc:
            what = what_failed(exc)
            if what is None:
                raise
            message = f"{what} is not answering; try again shortly."
            if not isinstance(exc, StoreUnavailable):  # the breaker logged that one
                warn_once(f"{request.path} answered 503", exc)
            response = JsonResponse({"error": message, "field": None}, status=503)
            response["Retry-After"] = "5"
            return response

    return guarded


@contextmanager
def database_optional(what: str) -> Iterator[None]:
    """Carry on without what the database would have added (logged once a minute)."""
    try:
        yield
    except DatabaseError as exc:
        warn_once(f"{what} without the database", exc)


class GuardedCommand(BaseCommand):
    """A command whose store, database or cache fails ends with one line, not a traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except Exception as exc:
            what = what_failed(exc)
            if what is None:
                raise
            raise CommandError(f"{what} failed: {first_line(exc)}") from exc
