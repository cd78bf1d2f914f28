"""Erasing one user from every store: ``manage.py active_users_erase_user <id>`` and
:func:`erase_user`.

What goes, where (README, "Erasure"): the live entries, the user's last touch and the
session index of the live store (Redis or the database backend's rows); ``LastSeen``;
``Activity`` rows and the ``SessionInfo`` rows of their sessions; ``DailyUnique`` rows
(database backend); and the user's place in every presence room, whose other members get a
``presence.leave`` while the user's own sockets are closed. Redis HyperLogLogs of daily and
monthly uniques cannot forget one member: they expire with ``HISTORY_DAY_RETENTION``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError

from active_users.backends import get_backend
from active_users.backends.buffer import buffer
from active_users.backends.health import reading
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable

logger = logging.getLogger("active_users")


def user_id_of(user: Any) -> str:
    """``str(pk)`` of a user or a primary key; ``ValueError`` when it cannot be one."""
    pk = getattr(user, "pk", user)
    try:
        value = get_user_model()._meta.pk.to_python(pk)
    except ValidationError:
        value = None
    # A primary key column holds 64 bits at most: a larger number fails on the database.
    if value is None or (isinstance(value, int) and not -(2**63) <= value < 2**63):
        raise ValueError(f"not a user id: {pk!r}")
    return str(pk)


def erase_user(user: Any) -> dict[str, int]:
    """Remove everything the package holds about ``user`` (a user or a primary key) and
    return how much went from each place. Raises ``StoreUnavailable`` or the database's
    error when a store fails; what was erased before stays erased, and running it again
    finishes the work."""
    user_id = user_id_of(user)
    buffer.discard(lambda presence: presence.user_id != user_id)
    with reading():
        get_backend().remove_user(user_id)
    erased = {"rooms": _erase_presence(user_id)}
    if apps.is_installed("active_users"):
        erased.update(_erase_rows(user_id))
    return erased


def _erase_rows(user_id: str) -> dict[str, int]:
    from django.db import transaction

    from active_users.backends.database import unique_key
    from active_users.models import Activity, DailyUnique, Kind, LastSeen, SessionInfo

    alias = conf.DATABASE
    with transaction.atomic(using=alias):
        activity = Activity.objects.using(alias).filter(user_id=user_id)
        sessions = set(activity.exclude(session="").values_list("session", flat=True))
        return {
            "activity": activity.delete()[0],
            "browser_sessions": SessionInfo.objects.using(alias)
            .filter(session__in=sessions)
            .delete()[0],
            "last_seen": LastSeen.objects.using(alias).filter(user_id=user_id).delete()[0],
            "daily_uniques": DailyUnique.objects.using(alias)
            .filter(kind=Kind.USER, key=unique_key(user_id))
            .delete()[0],
        }


def _erase_presence(user_id: str) -> int:
    """Take the user out of every presence room; return how many rooms they were in."""
    try:
        from active_users.presence import get_store, user_person
    except ImportError:  # redis-py is not installed: there are no rooms
        return 0
    try:
        store = get_store()
    except ImproperlyConfigured:  # no Redis configured: there are no rooms
        return 0
    try:
        rooms = store.erase(user_person(user_id))
    except Exception as exc:
        raise StoreUnavailable(f"the presence rooms could not be erased: {exc}") from exc
    _close_sockets(rooms)
    return len(rooms)


def _close_sockets(rooms: list[Any]) -> None:
    """Tell the user's open sockets (through the channel layer) to close; the first of each
    room tells the room the user left."""
    if not any(room.channels for room in rooms):
        return
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer
    except ImportError:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for room in rooms:
        for n, channel in enumerate(room.channels):
            message = {"type": "presence.erased", "user": room.info, "count": room.present,
                       "announce": n == 0}  # fmt: skip
            try:
                async_to_sync(layer.send)(channel, message)
            except Exception as exc:  # the socket is swept at its heartbeat deadline
                logger.warning("active_users: could not close an erased user's socket (%s)", exc)
