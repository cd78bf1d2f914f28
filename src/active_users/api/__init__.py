"""Reading who is active. Drop-in for django-active-users' ``active_users.api``.

Every function reads the configured backend. When the store does not answer they raise
:class:`active_users.exceptions.StoreUnavailable` (fast, while the circuit breaker is open).
Each has an async twin prefixed with ``a``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from active_users import clock
from active_users.backends import Counts, Page, get_backend
from active_users.backends.buffer import buffer
from active_users.backends.health import areading, reading
from active_users.conf import conf
from active_users.exceptions import BadRequest

__all__ = [
    "ActiveUsersPage",
    "Counts",
    "aclear_active_users",
    "aget_active_counts",
    "aget_active_users",
    "aget_active_users_count",
    "aget_active_users_page",
    "aget_active_visitors_count",
    "aget_distinct_active_users_count",
    "clear_active_users",
    "erase_user",
    "get_active_counts",
    "get_active_users",
    "get_active_users_count",
    "get_active_users_page",
    "get_active_visitors_count",
    "get_distinct_active_users_count",
]

logger = logging.getLogger("active_users")

MAX_PAGE_SIZE = 1000


@dataclass
class ActiveUsersPage:
    """A page of active entries, newest first.

    ``users`` holds the entry dicts of :func:`get_active_users` plus ``last_active`` (a
    datetime, aware when ``USE_TZ`` is on); pass ``next_cursor`` back to get the next page
    (None on the last one).
    """

    users: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


def _decode(member: str) -> dict[str, str] | None:
    try:
        return conf.KEY_CLASS.load(member).to_dict()
    except (ValueError, TypeError):
        logger.warning("active_users: skipped an entry that does not decode: %r", member[:200])
        return None


def _entries(members: list[str]) -> list[dict[str, str]]:
    return [entry for entry in map(_decode, members) if entry is not None]


def _page(page: Page) -> ActiveUsersPage:
    users = []
    for member, stamp in page.items:
        entry: dict[str, Any] | None = _decode(member)
        if entry is not None:
            entry["last_active"] = clock.from_timestamp(stamp)
            users.append(entry)
    return ActiveUsersPage(users=users, next_cursor=page.next_cursor)


def _check_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadRequest("limit", f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    return limit


def get_active_users_count() -> int:
    """How many entries (user sessions) are active."""
    with reading():
        return get_backend().count()


def get_active_users() -> list[dict[str, str]]:
    """Every active entry as a dict keyed by the entry class's ``fields``, newest first."""
    with reading():
        return _entries(get_backend().members())


def get_active_users_page(limit: int = 100, cursor: str | None = None) -> ActiveUsersPage:
    """One page of active entries; :class:`~active_users.exceptions.BadRequest` (a
    ``ValueError``) for a bad limit or cursor."""
    with reading():
        return _page(get_backend().page(_check_limit(limit), cursor))


def get_active_counts() -> Counts:
    """Active entries, distinct active users and active anonymous visitors, in one read."""
    with reading():
        return get_backend().counts()


def get_distinct_active_users_count() -> int:
    """How many different users are active (a user with two browsers counts once)."""
    return get_active_counts().users


def get_active_visitors_count() -> int:
    """How many anonymous visitors are active (needs ``ACTIVE_USERS_TRACK_ANONYMOUS``)."""
    return get_active_counts().visitors


def clear_active_users() -> None:
    """Forget every active entry and visitor."""
    with reading():
        get_backend().clear()
    buffer.cleared()


def erase_user(user: Any) -> dict[str, int]:
    """Remove everything the package holds about a user (or a primary key), from every
    store; see :func:`active_users.erasure.erase_user` and the README, "Erasure"."""
    from active_users.erasure import erase_user as erase

    return erase(user)


async def aget_active_users_count() -> int:
    async with areading():
        return await get_backend().acount()


async def aget_active_users() -> list[dict[str, str]]:
    async with areading():
        return _entries(await get_backend().amembers())


async def aget_active_users_page(limit: int = 100, cursor: str | None = None) -> ActiveUsersPage:
    async with areading():
        return _page(await get_backend().apage(_check_limit(limit), cursor))


async def aget_active_counts() -> Counts:
    async with areading():
        return await get_backend().acounts()


async def aget_distinct_active_users_count() -> int:
    return (await aget_active_counts()).users


async def aget_active_visitors_count() -> int:
    return (await aget_active_counts()).visitors


async def aclear_active_users() -> None:
    async with areading():
        await get_backend().aclear()
    buffer.cleared()
