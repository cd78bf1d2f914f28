"""The presence store itself, on Redis and on a Redis Cluster: people, tabs, grace, sweep."""

from __future__ import annotations

import asyncio

import pytest
from django.test import override_settings

from active_users.presence import (
    TIMEOUT,
    apresent_count,
    apresent_users,
    get_store,
    present_count,
    present_users,
)


@pytest.fixture(params=["redis", "redis-cluster"])
def store_settings(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    name = "redis_cluster_settings" if request.param == "redis-cluster" else "redis_settings"
    return request.getfixturevalue(name)


@override_settings(ACTIVE_USERS_PRESENCE_GRACE=0.3, ACTIVE_USERS_PRESENCE_TIMEOUT=0.6)
async def test_tabs_grace_and_timeout(store_settings) -> None:  # type: ignore[no-untyped-def]
    store = get_store()
    try:
        await tabs_grace_and_timeout(store)
    finally:
        await store.aclose()


async def tabs_grace_and_timeout(store) -> None:  # type: ignore[no-untyped-def]
    room = "chapter {1}: ünïcode"  # braces would break a Cluster hash tag: the room is hashed
    ada, bob = ("u:1", {"id": "1", "name": "ada"}), ("u:2", {"id": "2", "name": "bob"})
    first = await store.arun("join", room, "tab-1", *ada)
    second = await store.arun("join", room, "tab-2", *ada)
    third = await store.arun("join", room, "phone", *bob)
    assert (first.joined, second.joined, third.joined) == (True, False, True)
    assert third.present == 2 and await apresent_count(room) == 2
    assert sorted(u["name"] for u in await apresent_users(room)) == ["ada", "bob"]

    closed = await store.arun("leave", room, "tab-1", ada[0])
    assert (closed.left, closed.present) == ([], 2)  # one of ada's tabs is still open
    await store.arun("leave", room, "tab-2", ada[0])  # her last: gone after the grace
    assert (await store.arun("sweep", room)).left == []
    await asyncio.sleep(0.35)
    gone = await store.arun("sweep", room)
    assert gone.left == [ada] and gone.present == 1

    await asyncio.sleep(0.7)  # bob's phone stopped its heartbeats
    swept = await store.arun("sweep", room)
    assert swept.left == [bob] and swept.present == 0
    assert present_count(room) == 0 and present_users(room) == []


def test_a_room_must_be_a_short_nonempty_string(store_settings) -> None:  # type: ignore[no-untyped-def]
    for bad in ("", "x" * 201, None):
        with pytest.raises(ValueError, match="room"):
            present_count(bad)  # type: ignore[arg-type]


async def test_joins_and_leaves_send_the_signals_once(store_settings) -> None:  # type: ignore[no-untyped-def]
    from active_users.consumers import announce
    from active_users.presence import user_joined_room, user_left_room

    heard: list[tuple[str, str, str]] = []

    def joined(sender, room, person, info, **kwargs):  # type: ignore[no-untyped-def]
        heard.append(("join", room, info["name"]))

    def left(sender, room, person, info, **kwargs):  # type: ignore[no-untyped-def]
        heard.append(("leave", room, info["name"]))

    user_joined_room.connect(joined)
    user_left_room.connect(left)
    store = get_store()
    ada = ("u:1", {"id": "1", "name": "ada"})
    try:
        with override_settings(ACTIVE_USERS_PRESENCE_GRACE=0.1):
            for tab in ("tab-1", "tab-2"):  # two tabs: one join
                await announce("doc", await store.arun("join", "doc", tab, *ada), ada)
            for tab in ("tab-1", "tab-2"):
                await announce("doc", await store.arun("leave", "doc", tab, ada[0]), None)
            await asyncio.sleep(0.15)
            await announce("doc", await store.arun("sweep", "doc"), None)
            await announce("doc", await store.arun("sweep", "doc"), None)  # nothing more
    finally:
        user_joined_room.disconnect(joined)
        user_left_room.disconnect(left)
        await store.aclose()
    assert heard == [("join", "doc", "ada"), ("leave", "doc", "ada")]


async def test_presence_connects_with_its_own_timeout(redis_settings) -> None:  # type: ignore[no-untyped-def]
    """Presence runs beside WebSocket events: a busy machine's slow connect must not fail a
    join at the request path's 0.25 s, which fits a request that gives up rather than waits."""
    store = get_store()
    try:
        client, _ = store._aclient()
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_connect_timeout"] == kwargs["socket_timeout"] == TIMEOUT
        assert store.client.connection_pool.connection_kwargs["socket_connect_timeout"] == TIMEOUT
        assert (await store.arun("sweep", "timeouts")).present == 0
    finally:
        await store.aclose()
