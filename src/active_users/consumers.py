"""Presence over Django Channels (the ``[channels]`` extra): a mixin and a ready consumer.

``PresenceConsumer`` serves ``ws/presence/<room>/?token=<room token>``
(``active_users.routing``). To add presence to a consumer of your own, mix in
:class:`PresenceMixin`, refuse the connection unless ``await presence_allowed(room)``, then
call ``join_presence(room)`` after ``accept()``, ``refresh_presence()`` on each client
heartbeat and ``leave_presence()`` in ``disconnect()``. Who may join which room is decided
by ``authorize_presence()`` (see ``access.py``).

Messages sent to the client (JSON): ``presence.state`` on joining (``count``, ``users`` when
the room is small, ``heartbeat`` seconds); then ``presence.join`` / ``presence.leave``
(``user``, ``count``) in rooms of up to ``ACTIVE_USERS_PRESENCE_LIST_LIMIT`` people, or a
``presence.count`` (``count``) at most every ``ACTIVE_USERS_PRESENCE_COUNT_INTERVAL``
seconds in larger ones; ``presence.state`` again, at most once a heartbeat, when a heartbeat
finds the room's count is not the last one the connection was told (the channel layer
delivers at most once: an event it lost is made good within a heartbeat); ``presence.token``
(``token``, ``max_age``) on joining and then every third of
``ACTIVE_USERS_PRESENCE_TOKEN_MAX_AGE``, a fresh token for reconnecting.
Anonymous connections get no names unless ``ACTIVE_USERS_PRESENCE_SHOW_NAMES_TO_ANONYMOUS``.
The client sends ``{"type": "heartbeat"}`` every ``heartbeat`` seconds; a connection silent
for ``ACTIVE_USERS_PRESENCE_TIMEOUT`` seconds is swept. A message that is not JSON text
within ``inputs.MAX_JSON_BYTES`` and ``inputs.MAX_JSON_DEPTH`` gets an ``error`` frame
(``error``, ``field``) and the connection stays open.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.exceptions import DenyConnection
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from active_users.access import check_room_token, origin_allowed, query_token, sign_room_token
from active_users.api import aget_active_counts
from active_users.conf import conf
from active_users.exceptions import BadRequest, StoreUnavailable
from active_users.inputs import error_frame, read_message
from active_users.permissions import is_staff_user
from active_users.presence import (
    Change,
    check_room,
    get_store,
    group_name,
    user_joined_room,
    user_left_room,
    user_person,
)
from active_users.tracking import tracker

logger = logging.getLogger("active_users")

# Tasks that outlive the consumer that started them (sweeps after a grace period, trailing
# count events): referenced here so they are not garbage-collected mid-way.
_tasks: set[asyncio.Task[Any]] = set()
_pending_counts: set[str] = set()
_last_warning = 0.0


def _spawn(coroutine: Any) -> None:
    task = asyncio.ensure_future(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _warn(exc: BaseException) -> None:
    global _last_warning
    if time.monotonic() - _last_warning > 60:
        _last_warning = time.monotonic()
        logger.warning("active_users: presence is unavailable (%s: %s)", type(exc).__name__, exc)


async def announce(room: str, change: Change, joined: tuple[str, dict[str, Any]] | None) -> None:
    """Tell the room who joined and who left (or, in a large room, how many are there), and
    send the signals. Exactly one process sees each join and each leave."""
    layer = get_channel_layer()
    group = group_name(room)
    events = []
    if joined is not None and change.joined:
        await sync_to_async(user_joined_room.send)(
            sender=PresenceMixin, room=room, person=joined[0], info=joined[1]
        )
        events.append({"type": "presence.join", "user": joined[1]})
    for person, info in change.left:
        await sync_to_async(user_left_room.send)(
            sender=PresenceMixin, room=room, person=person, info=info
        )
        events.append({"type": "presence.leave", "user": info})
    if not events or layer is None:
        return
    if change.present > conf.PRESENCE_LIST_LIMIT:
        await announce_count(room)
        return
    for event in events:
        await layer.group_send(group, {**event, "room": room, "count": change.present})


async def announce_count(room: str) -> None:
    """Send the room's count now if no process did within the interval, else once the
    interval is over (one pending send per room and process)."""
    interval = conf.PRESENCE_COUNT_INTERVAL
    store = get_store()
    if await store.aclaim(room, interval):
        count = await store.acount(room)
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(
                group_name(room), {"type": "presence.count", "room": room, "count": count}
            )
        return
    if room in _pending_counts:
        return
    _pending_counts.add(room)

    async def later() -> None:
        await asyncio.sleep(interval)
        _pending_counts.discard(room)
        await announce_count(room)

    _spawn(later())


async def sweep_later(room: str, delay: float) -> None:
    """Announce the leave of people whose grace period ends in ``delay`` seconds."""
    await asyncio.sleep(delay)
    try:
        change = await get_store().arun("sweep", room)
        await announce(room, change, None)
    except Exception as exc:
        _warn(exc)


def request_from_scope(scope: dict[str, Any]) -> HttpRequest:
    """An ``HttpRequest`` carrying what the tracker reads (path, client address, cookies,
    user, session), so a connection keeps its user in the active store."""
    request = HttpRequest()
    request.path = request.path_info = scope.get("path", "/")
    headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}
    client = scope.get("client") or ("", 0)
    request.META = {
        "REMOTE_ADDR": client[0] or "",
        "HTTP_USER_AGENT": headers.get("user-agent", ""),
    }
    if "x-forwarded-for" in headers:
        request.META["HTTP_X_FORWARDED_FOR"] = headers["x-forwarded-for"]
    request.COOKIES = dict(scope.get("cookies", {}))
    request.user = scope.get("user") or AnonymousUser()
    if "session" in scope:
        request.session = scope["session"]
    return request


class PresenceMixin:
    """Presence for an ``AsyncWebsocketConsumer`` (or ``AsyncJsonWebsocketConsumer``)."""

    presence_room: str | None = None
    scope: dict[str, Any]
    channel_name: str
    channel_layer: Any
    _presence_allowed: str | None = None
    _presence_names = False
    _presence_token_at: float | None = None
    #: The room's count as this connection was last told it (state, join, leave, count).
    _presence_told: int | None = None

    def get_presence_token(self) -> str | None:
        """The room token this connection presents: the ``token`` query parameter."""
        return query_token(self.scope)

    async def authorize_presence(self, room: str) -> bool:
        """Whether this connection may join ``room``. By default: when it presents a valid
        room token for this room and its person (``{% active_users_presence %}`` signs one),
        or else when ``ACTIVE_USERS_PRESENCE_AUTHORIZE(user, room)`` says so. Override for
        rules of your own; the origin and anonymous checks come first."""
        user, session = self.scope.get("user"), self.scope.get("session")
        if check_room_token(self.get_presence_token(), room, user, session):
            return True
        hook = conf.PRESENCE_AUTHORIZE
        return hook is not None and bool(await sync_to_async(hook)(user or AnonymousUser(), room))

    async def presence_allowed(self, room: str) -> bool:
        """Whether this connection may join ``room``: a page of this site or no browser at
        all (``access.origin_allowed``), a user unless ``ACTIVE_USERS_PRESENCE_ANONYMOUS``,
        a valid room name, and ``authorize_presence(room)``. Call it before ``accept()``:
        closing then refuses the handshake with HTTP 403."""
        user = self.scope.get("user")
        authenticated = user is not None and user.is_authenticated
        try:
            check_room(room)
        except ValueError:
            return False
        if not origin_allowed(self.scope) or not (authenticated or conf.PRESENCE_ANONYMOUS):
            return False
        if not await self.authorize_presence(room):
            return False
        self._presence_allowed = room
        return True

    def get_presence_person(self) -> str:
        """Who this connection is: one person per user, one per anonymous connection."""
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            return user_person(user.pk)
        return "a:" + hashlib.blake2b(self.channel_name.encode(), digest_size=12).hexdigest()

    def get_presence_info(self) -> dict[str, Any]:
        """What the room sees of this person; override to show more (or less)."""
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            return {"id": str(user.pk), "name": user.get_username()}
        return {"anonymous": True}

    async def join_presence(self, room: str) -> Change:
        """Join ``room`` and send the client its state. Raises ``DenyConnection`` (which
        closes the connection when raised in ``connect()``) unless ``presence_allowed``."""
        if self._presence_allowed != room and not await self.presence_allowed(room):
            raise DenyConnection(f"not allowed in presence room {room!r}")
        user = self.scope.get("user")
        self._presence_names = (
            user is not None and user.is_authenticated
        ) or conf.PRESENCE_SHOW_NAMES_TO_ANONYMOUS
        self._presence_token_at = None
        if not getattr(self, "channel_name", None):  # no channel layer: a name of its own
            self.channel_name = f"presence!{uuid.uuid4().hex}"
        self.presence_room = room
        self._presence_person = self.get_presence_person()
        self._presence_info = self.get_presence_info()
        self._presence_refreshed = 0.0
        try:
            if self.channel_layer is not None:
                await self.channel_layer.group_add(group_name(room), self.channel_name)
            change = await self._join()
        except Exception as exc:  # the rooms' Redis or the channel layer: tell, and close
            _warn(exc)
            self.presence_room = None
            await self.send_presence({"type": "presence.error", "room": room,
                                      "error": "Presence is not available right now."})  # fmt: skip
            await self.close(code=1013)  # type: ignore[attr-defined]  # try again later
            return Change()
        await self.send_presence_state(room, change.present)
        if self.get_presence_token() is not None:
            await self.renew_presence_token()
        return change

    async def send_presence_state(self, room: str, count: int) -> None:
        """Send the client the room as it is: ``count``, and who is there when the room is
        small and this connection is shown names."""
        users = None
        if count <= conf.PRESENCE_LIST_LIMIT and self._presence_names:
            try:
                users = await get_store().apeople(room)
            except Exception as exc:
                _warn(exc)
        await self.send_presence({
            "type": "presence.state", "room": room, "count": count,
            "users": users, "heartbeat": conf.PRESENCE_HEARTBEAT,
        })  # fmt: skip
        self._presence_told = count

    async def renew_presence_token(self) -> None:
        """Send the client a fresh room token, for reconnecting after the one it came with
        expired; not when ``ACTIVE_USERS_PRESENCE_AUTHORIZE`` no longer lets it in."""
        room = self.presence_room
        assert room is not None
        user, session = self.scope.get("user"), self.scope.get("session")
        hook = conf.PRESENCE_AUTHORIZE
        if hook is not None and not await sync_to_async(hook)(user or AnonymousUser(), room):
            self._presence_token_at = None
            return
        token = sign_room_token(room, user, session)
        self._presence_token_at = time.monotonic()
        if token is not None:
            max_age = conf.PRESENCE_TOKEN_MAX_AGE
            await self.send_presence({"type": "presence.token", "token": token, "max_age": max_age})

    async def refresh_presence(self) -> None:
        """A heartbeat: keep this connection (and its user, in the active store) present,
        and send the client the room's state again when its count is not the one the client
        was last told (an event the channel layer lost). Heartbeats closer together than
        half the heartbeat period are ignored."""
        room = self.presence_room
        if room is None:
            return
        now = time.monotonic()
        if now - self._presence_refreshed < conf.PRESENCE_HEARTBEAT / 2:
            return
        try:
            change = await self._join()
        except Exception as exc:
            _warn(exc)
        else:  # what this heartbeat changed (a sweep's leaves) reaches everyone as events
            if not (change.joined or change.left) and change.present != self._presence_told:
                await self.send_presence_state(room, change.present)
        issued = self._presence_token_at
        if issued is not None and now - issued >= conf.PRESENCE_TOKEN_MAX_AGE / 3:
            await self.renew_presence_token()

    async def leave_presence(self) -> None:
        room = self.presence_room
        if room is None:
            return
        self.presence_room = None
        try:
            if self.channel_layer is not None:
                await self.channel_layer.group_discard(group_name(room), self.channel_name)
            change = await get_store().arun("leave", room, self.channel_name, self._presence_person)
            await announce(room, change, None)
        except Exception as exc:
            _warn(exc)
            # The connection stays in the room until its heartbeat deadline: sweep then.
            _spawn(sweep_later(room, conf.PRESENCE_TIMEOUT + 0.05))
            return
        _spawn(sweep_later(room, conf.PRESENCE_GRACE + 0.05))

    async def _join(self) -> Change:
        """Put (or keep) this connection in its room, announce what changed and keep its
        user active. Raises what the rooms' store or the channel layer raises."""
        room = self.presence_room
        assert room is not None
        self._presence_refreshed = time.monotonic()
        change = await get_store().arun(
            "join", room, self.channel_name, self._presence_person, self._presence_info
        )
        await announce(room, change, (self._presence_person, self._presence_info))
        await tracker.atrack(request_from_scope(self.scope))  # never raises
        return change

    async def send_presence(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message, ensure_ascii=False))  # type: ignore[attr-defined]

    # Channel-layer events, forwarded to the client.
    async def presence_join(self, event: dict[str, Any]) -> None:
        await self._tell(event)

    async def presence_leave(self, event: dict[str, Any]) -> None:
        await self._tell(event)

    async def presence_count(self, event: dict[str, Any]) -> None:
        await self._tell(event)

    async def _tell(self, event: dict[str, Any]) -> None:
        """Send the client a room event (without who, when it is not shown names) and note
        the count it now knows."""
        await self.send_presence(event if self._presence_names else _unnamed(event))
        self._presence_told = event["count"]

    async def presence_erased(self, event: dict[str, Any]) -> None:
        """This connection's user was erased (``erasure.erase_user``): already out of the
        room's store; one of their connections tells the room, and each closes."""
        room = self.presence_room
        if room is None:
            return
        self.presence_room = None
        if self.channel_layer is not None:
            await self.channel_layer.group_discard(group_name(room), self.channel_name)
            if event.get("announce") and event["count"] > conf.PRESENCE_LIST_LIMIT:
                await announce_count(room)
            elif event.get("announce"):
                leave = {"type": "presence.leave", "room": room, "user": event["user"],
                         "count": event["count"]}  # fmt: skip
                await self.channel_layer.group_send(group_name(room), leave)
        await self.close()  # type: ignore[attr-defined]


def _unnamed(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "user"}


class PresenceConsumer(PresenceMixin, AsyncWebsocketConsumer):
    """Joins the room named in the URL (``url_route`` kwarg ``room``) and keeps the
    connection present while the client sends heartbeats. Refuses (the handshake gets
    HTTP 403) what ``presence_allowed`` refuses: a foreign origin, a missing, forged,
    expired or someone else's room token, an anonymous connection unless
    ``ACTIVE_USERS_PRESENCE_ANONYMOUS``, a room name longer than 200 characters."""

    def get_presence_room(self) -> str:
        return str(self.scope["url_route"]["kwargs"]["room"])

    async def connect(self) -> None:
        room = self.get_presence_room()
        if not await self.presence_allowed(room):
            await self.close()
            return
        await self.accept()
        await self.join_presence(room)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = read_message(text_data, bytes_data)
        except BadRequest as exc:
            await self.send(text_data=error_frame(exc))
            return
        if isinstance(message, dict) and message.get("type") == "heartbeat":
            await self.refresh_presence()

    async def disconnect(self, code: int) -> None:
        await self.leave_presence()


class DashboardConsumer(AsyncWebsocketConsumer):
    """The admin dashboard's live counts, pushed to staff (from this site's pages or
    clients that are not browsers): the store is read once a second per open dashboard
    and the counts are sent when they change (the page polls instead when this route is
    not served)."""

    PERIOD = 1.0

    async def connect(self) -> None:
        if not (is_staff_user(self.scope.get("user")) and origin_allowed(self.scope)):
            await self.close()
            return
        await self.accept()
        self.pushing = asyncio.ensure_future(self._push())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The client sends nothing the dashboard needs; what it sends is still read with
        the package's limits, and a message that breaks them gets an error frame."""
        try:
            read_message(text_data, bytes_data)
        except BadRequest as exc:
            await self.send(text_data=error_frame(exc))

    async def _push(self) -> None:
        sent = None
        while True:
            try:
                counts = await aget_active_counts()
                found: dict[str, Any] = {"entries": counts.entries, "users": counts.users,
                         "visitors": counts.visitors}  # fmt: skip
            except StoreUnavailable:
                found = {"error": "The active users store is not answering."}
            if found != sent:
                await self.send(text_data=json.dumps({"type": "counts", **found}))
                sent = found
            await asyncio.sleep(self.PERIOD)

    async def disconnect(self, code: int) -> None:
        pushing = getattr(self, "pushing", None)
        if pushing is not None:
            pushing.cancel()
