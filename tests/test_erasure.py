"""Erasing a user reaches every store: live entries, last seen, activity and its browser
sessions, daily uniques, the session index and presence rooms, on each backend; the rest of
the site's data stays."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.management import call_command
from django.test import Client, override_settings

from active_users import api
from active_users.access import sign_room_token
from active_users.backends import get_backend
from active_users.backends.database import unique_key
from active_users.last_seen import flush_last_seen, last_seen
from active_users.models import Activity, DailyUnique, LastSeen, SessionInfo
from active_users.presence import PRESENCE_SCRIPT, get_store, present_users, user_person
from tests.redis_server import delete_keys_under, key_prefix
from tests.sockets import Socket

ROOM = "doc-42"


@pytest.fixture(params=["database", "redis"])
def backend(request, redis_url):  # type: ignore[no-untyped-def]
    """Each backend; rooms live in the same Redis (the database backend's presence too)."""
    if request.param == "redis":
        request.getfixturevalue("redis_settings")
        yield request.param
        return
    request.getfixturevalue("db")
    prefix = key_prefix()
    with override_settings(ACTIVE_USERS_BACKEND="database", ACTIVE_USERS_REDIS_URL=redis_url,
                           ACTIVE_USERS_KEY_PREFIX=prefix):  # fmt: skip
        yield request.param
    delete_keys_under(redis_url, prefix)


def visit(user: Any) -> Client:
    """Requests, an activity event and a place in a room, as a browsing user leaves them."""
    browser = Client()
    browser.force_login(user)
    browser.get("/page/")
    event = {"event": "pageview", "date": datetime.now(timezone.utc).isoformat(), "path": "/d"}
    assert browser.post("/tracking/log/", json.dumps(event),
                        content_type="application/json").status_code == 201  # fmt: skip
    info = {"id": str(user.pk), "name": user.username}
    store = get_store()
    join = store.client.register_script(PRESENCE_SCRIPT)
    join(
        keys=store.keys(ROOM),
        args=store._args("join", f"chan-{user.pk}", user_person(user.pk), info),
    )
    return browser


def sessions_index(name: str) -> set[str]:
    """Who the live store's session index points at (each session's members' usernames)."""
    backend = get_backend()
    if name == "database":
        rows = backend.objects.exclude(session="").values_list("data", flat=True)
        return {json.loads(member)[-1] for member in rows}
    found = set()
    for members in backend.client.hgetall(backend.sessions_key).values():
        found.update(json.loads(m)[-1] for m in members.decode().split("\n"))
    return found


def test_erasing_a_user_empties_every_store_of_them_and_only_them(backend, make_user) -> None:
    user, other = make_user("erase-me"), make_user("keep-me")
    visit(user)
    visit(other)
    flush_last_seen(force=True)
    assert sessions_index(backend) == {"erase-me", "keep-me"}
    sessions = set(Activity.objects.filter(user=user).values_list("session", flat=True))
    assert SessionInfo.objects.filter(session__in=sessions).exists()
    if backend == "database":
        assert DailyUnique.objects.filter(key=unique_key(str(user.pk))).exists()

    call_command("active_users_erase_user", str(user.pk))

    assert [e["username"] for e in api.get_active_users()] == ["keep-me"]  # live entries
    assert get_backend().seen([str(user.pk)]) == {}  # the live store's last touch
    assert not LastSeen.objects.filter(user=user).exists()
    assert last_seen(user) is None
    assert list(Activity.objects.values_list("user__username", flat=True)) == ["keep-me"]
    assert not SessionInfo.objects.filter(session__in=sessions).exists()
    assert SessionInfo.objects.count() == 1  # the other's browser session
    assert sessions_index(backend) == {"keep-me"}
    assert not DailyUnique.objects.filter(key=unique_key(str(user.pk))).exists()
    if backend == "database":
        assert DailyUnique.objects.filter(key=unique_key(str(other.pk))).exists()
    assert present_users(ROOM) == [{"id": str(other.pk), "name": "keep-me"}]


def test_the_api_function_erases_as_the_command_does(backend, make_user) -> None:
    user = make_user("api-erased")
    visit(user)
    flush_last_seen(force=True)
    erased = api.erase_user(user)
    assert erased["rooms"] == 1 and erased["activity"] == 1 and erased["last_seen"] == 1
    assert api.get_active_users() == [] and present_users(ROOM) == []


def test_an_erased_users_sockets_close_and_the_room_sees_them_leave(
    redis_settings, transactional_db, make_user
) -> None:
    # transactional: Channels closes the thread's database connection on each event
    from active_users.consumers import PresenceConsumer

    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    erased, watcher = make_user("erased"), make_user("watcher")

    def socket(user: Any) -> Socket:
        token = sign_room_token(ROOM, user, None)
        return Socket(PresenceConsumer.as_asgi(), f"/ws/presence/{ROOM}/?token={token}",
                      user=user, url_route={"args": (), "kwargs": {"room": ROOM}})  # fmt: skip

    async def scenario() -> None:
        gone, staying = socket(erased), socket(watcher)
        assert await gone.connect() and await staying.connect()
        await staying.next_of("presence.state")
        await sync_to_async(call_command)("active_users_erase_user", str(erased.pk))
        leave = await staying.next_of("presence.leave")
        assert leave["user"] == {"id": str(erased.pk), "name": "erased"}
        assert leave["count"] == 1
        await gone.next_of("websocket.close")  # the erased user's socket is closed
        await gone.disconnect()
        assert [p["name"] for p in await sync_to_async(present_users)(ROOM)] == ["watcher"]
        await staying.disconnect()
        await get_store().aclose()
        await get_backend().aclose()

    with override_settings(CHANNEL_LAYERS=layers):
        async_to_sync(scenario)()
