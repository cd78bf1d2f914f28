"""Signal receivers: logging in ends a visitor, logging out ends the session's entries, a
deleted user leaves nothing live behind."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from active_users.backends import Presence, get_backend
from active_users.backends.buffer import buffer
from active_users.backends.health import reading
from active_users.requests import hash_session_key, visitor_id
from active_users.tracking import DAY, tracker

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger("active_users")


def _logged_out(*, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """Every entry of the session leaves the active list at once, whatever the logout
    request's IP, headers or the entry class's fields."""
    if user is None or request is None:
        return
    session = getattr(request, "session", None)
    hashed = hash_session_key(session.session_key) if session is not None else ""
    try:
        if hashed:
            buffer.discard(lambda presence: presence.session != hashed)
            with reading():
                get_backend().remove_session(hashed)
            return
        # No session (token auth): the entry this request makes is all there is to find.
        observed = tracker.observe(request)
        if observed is not None and not observed[1].anonymous:
            member = observed[1].member
            buffer.discard(lambda presence: presence.member != member)
            with reading():
                get_backend().remove(observed[1])
    except Exception:
        logger.warning("active_users: could not remove the entries of a user who logged out")


def _logged_in(*, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A visitor who logs in stops being counted as an anonymous visitor at once."""
    if request is None:
        return
    try:
        visitor = Presence(visitor_id(request, int(time.time() // DAY)))
        buffer.discard(lambda presence: presence != visitor)
        with reading():
            get_backend().remove(visitor)
    except Exception:
        logger.warning("active_users: could not remove the visitor entry of a user who logged in")


def _user_deleted(*, instance: Any, **kwargs: Any) -> None:
    """A deleted user leaves nothing behind in the live store."""
    user_id = str(instance.pk)
    try:
        buffer.discard(lambda presence: presence.user_id != user_id)
        with reading():
            get_backend().remove_user(user_id)
    except Exception:
        logger.warning(
            "active_users: could not remove the live entries of deleted user %s", user_id
        )


def connect_signals() -> None:
    """Connect the login, logout and user-deletion receivers (idempotent)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_in, user_logged_out
    from django.db.models.signals import post_delete

    user_logged_in.connect(_logged_in, dispatch_uid="active_users.login")
    user_logged_out.connect(_logged_out, dispatch_uid="active_users.logout")
    post_delete.connect(_user_deleted, sender=get_user_model(), dispatch_uid="active_users.delete")
