"""Store health: one circuit breaker per process, shared by writes and reads.

A failing store is left alone for ``ACTIVE_USERS_FAILURE_COOLDOWN`` seconds and logged once
per outage. Reads go through :func:`reading` (or :func:`areading`), which fails fast while
the breaker is open, first writes what this process holds in its write-behind buffer (so a
request followed by a count in the same process sees itself), and turns store errors into
:class:`~active_users.exceptions.StoreUnavailable`. A refused input (``ValueError``,
``TypeError``) is the caller's fault, never the store's, and does not open the breaker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from django.core.signals import setting_changed

from active_users.conf import conf
from active_users.exceptions import StoreUnavailable

logger = logging.getLogger("active_users")


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
                "waiting for it until it answers again",
                type(exc).__name__,
                exc,
            )

    def reset(self) -> None:
        self.failing = False
        self.retry_at = 0.0


breaker = CircuitBreaker()


def _refuse_while_open() -> None:
    if not breaker.allows():
        raise StoreUnavailable("the active users store is not answering")


def _failed(exc: Exception) -> StoreUnavailable:
    breaker.failed(exc)
    return StoreUnavailable(f"the active users store failed: {exc}")


@contextmanager
def _guarded() -> Iterator[None]:
    try:
        yield
    except (ValueError, TypeError, StoreUnavailable):
        raise
    except Exception as exc:
        raise _failed(exc) from exc
    breaker.succeeded()


@contextmanager
def reading() -> Iterator[None]:
    """Guard a read: :class:`StoreUnavailable` when the store fails or is known down."""
    from active_users.backends.buffer import buffer

    _refuse_while_open()
    buffer.flush()
    with _guarded():
        yield


@asynccontextmanager
async def areading() -> AsyncIterator[None]:
    """Async twin of :func:`reading`."""
    from active_users.backends.buffer import buffer

    _refuse_while_open()
    await buffer.aflush()
    with _guarded():
        yield


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES"}:
        breaker.reset()


setting_changed.connect(_setting_changed)
