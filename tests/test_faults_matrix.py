"""The fault matrix (docs/faults.md): each dependency refused, and killed mid-request, at each
entry point. What a user sees: the host page is served (untracked if need be), JSON
endpoints answer 503 with a message, commands end with a one-line ``CommandError``,
sockets send an error frame or close cleanly; and only the live store's own failures open
its circuit breaker. ``test_faults.py`` covers the live store's outages over time (stalls,
restarts, TLS); this module covers every other cell.

Faults are real: a Redis or cache URL on a closed port, a Redis server stopped, another
connection holding the package's tables (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``LOCK TABLE``, MariaDB ``LOCK TABLES``), a connection terminated from a second one
(``pg_terminate_backend``, ``KILL``) just before the package's first query of a request.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.signals import request_started
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from active_users.access import sign_room_token
from active_users.backends import get_backend
from active_users.backends.health import breaker
from active_users.models import (
    ActiveEntry,
    Activity,
    DailyUnique,
    HistorySample,
    LastSeen,
    SessionInfo,
)
from tests.redis_server import RedisServer, free_port
from tests.sockets import Socket

LOG = "/tracking/log/"
V1 = ["counts", "users", "history", "uniques"]
DASHBOARD = "/admin/active_users/dashboard/"
DASHBOARD_DATA = ["counts", "users", "history", "uniques", "pages"]
TABLES = [m._meta.db_table for m in (ActiveEntry, Activity, SessionInfo, LastSeen, DailyUnique,
                                     HistorySample)]  # fmt: skip


def closed_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def event() -> str:
    return json.dumps({"event": "pageview", "date": datetime.now(timezone.utc).isoformat()})


def warnings_of(caplog) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.getMessage() for r in caplog.records
            if r.name == "active_users" and r.levelno >= logging.WARNING]  # fmt: skip


@pytest.fixture
def staff(make_user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def assert_json_503(response: Any, failed: str) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == f"{failed} is not answering; try again shortly."


def render_tags(user: Any) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template(
        "{% load active_users %}[{% active_users_count %}]"
        "{% active_users_list as entries %}[{{ entries|length }}][{{ person|last_seen_text }}]"
    )
    return template.render(Context({"request": request, "person": user}))


def command_error(*args: str) -> str:
    with pytest.raises(CommandError) as failed:
        call_command(*args)
    message = str(failed.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- The live store (Redis) refused, or killed mid-request ---------------------------------


@pytest.fixture(params=["refused", "killed"])
def redis_down(request, db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The Redis live store on a closed port, or a server that answered and was stopped."""
    if request.param == "refused":
        with override_settings(
            ACTIVE_USERS_BACKEND="redis", ACTIVE_USERS_REDIS_URL=closed_redis_url()
        ):
            yield request.param
        return
    server = RedisServer()
    try:
        with override_settings(ACTIVE_USERS_BACKEND="redis", ACTIVE_USERS_REDIS_URL=server.url):
            assert get_backend().count() == 0  # the pool holds a live connection
            server.stop()
            yield request.param
    finally:
        server.close()


def test_live_store_down_pages_are_served_and_json_answers_503(
    redis_down, staff, make_user
) -> None:
    user = make_user("reader")
    browser = Client()
    browser.force_login(user)
    assert browser.get("/page/").content == b"ok"
    assert browser.post(LOG, event(), content_type="application/json").status_code == 201
    assert Activity.objects.filter(user=user).count() == 1  # the database still takes events
    for name in V1:
        assert_json_503(staff.get(f"/tracking/v1/{name}/"), "The active users store")
    assert_json_503(staff.get("/active-users/active-users-info/"), "The active users store")
    assert staff.get(DASHBOARD).status_code == 200
    for name in ["counts", "users", "history", "uniques"]:
        assert_json_503(staff.get(f"{DASHBOARD}data/{name}/"), "The active users store")
    assert staff.get(f"{DASHBOARD}data/pages/").json()["enabled"]  # the database's alone
    assert render_tags(user) == "[][0][Never seen]"


def test_live_store_down_commands_end_with_one_line(redis_down, make_user) -> None:
    user = make_user("someone")
    assert "store" in command_error("active_users")
    assert "store" in command_error("active_users_clear_expired")
    assert "flush" in command_error("active_users_flush_last_seen")
    assert "store" in command_error("active_users_erase_user", str(user.pk))
    call_command("active_users_prune_activity", "--days", "1")  # the database alone: works


# -- The cache of the rate limit refused ---------------------------------------------------


@pytest.fixture
def cache_down() -> Iterator[None]:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "limits": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                   "LOCATION": closed_redis_url()},
    }  # fmt: skip
    with override_settings(CACHES=caches, ACTIVE_USERS_CACHE="limits"):
        yield


@pytest.mark.parametrize("backend", ["database", "redis"])
def test_a_rate_limit_whose_cache_is_down_fails_open_with_one_log_line(
    backend, cache_down, make_user, caplog, request
) -> None:
    if backend == "redis":
        request.getfixturevalue("redis_settings")
    user = make_user("writer")
    browser = Client()
    browser.force_login(user)
    with override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="2/m"):
        answers = [browser.post(LOG, event(), content_type="application/json") for _ in range(4)]
    assert [a.status_code for a in answers] == [201] * 4  # open: the limit cannot count
    assert Activity.objects.filter(user=user).count() == 4
    lines = [m for m in warnings_of(caplog) if "rate limit" in m]
    assert len(lines) == 1 and "ConnectionError" in lines[0]
    assert not breaker.failing  # the live store is fine, and still used
    assert browser.get("/page/").status_code == 200


# -- The database locked by another writer, or its connection killed mid-request -----------


def _connect_like_django() -> Any:
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        import psycopg

        return psycopg.connect(
            dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None, port=settings["PORT"] or None, autocommit=True,
        )  # fmt: skip
    import pymysql

    return pymysql.connect(
        host=settings["HOST"] or "127.0.0.1", port=int(settings["PORT"] or 3306),
        user=settings["USER"], password=settings["PASSWORD"] or "", database=settings["NAME"],
        autocommit=True,
    )  # fmt: skip


@contextmanager
def database_locked() -> Iterator[None]:
    """Another connection holds write locks on the package's tables; ours gives up quickly
    (SQLite's shared cache at once, PostgreSQL after 300 ms, MariaDB after 1 s)."""
    if connection.vendor == "sqlite":
        name = connection.settings_dict["NAME"]
        if "mode=memory" not in name:
            pytest.skip("the lock is taken on the suite's in-memory SQLite database")
        other = sqlite3.connect(name, uri=True, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            other.execute(f'DELETE FROM "{table}" WHERE 0')  # a write lock on each table
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    other = _connect_like_django()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET lock_timeout = '300ms'")
        else:
            cursor.execute("SET SESSION lock_wait_timeout = 1")
    try:
        if connection.vendor == "postgresql":
            other.execute("BEGIN")
            other.execute(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE")
        else:
            other.cursor().execute("LOCK TABLES " + ", ".join(f"{t} WRITE" for t in TABLES))
        yield
    finally:
        if connection.vendor == "postgresql":
            other.execute("ROLLBACK")
        else:
            other.cursor().execute("UNLOCK TABLES")
        other.close()
        connection.close()


@contextmanager
def connection_killed() -> Iterator[list[str]]:
    """Django's connection is terminated from a second connection just before the
    package's first query of each request."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite has no server connection to kill; the locked cases stand for it")
    killed: list[str] = []

    def kill(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if not killed and any(table in sql for table in TABLES):
            killed.append(sql)
            other = _connect_like_django()
            if connection.vendor == "postgresql":
                pid = connection.connection.info.backend_pid
                other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            else:
                other.cursor().execute(f"KILL {int(connection.connection.thread_id())}")
            other.close()
        return execute(sql, params, many, context)

    def next_request(**kwargs: Any) -> None:  # what a server does between requests
        connection.close_if_unusable_or_obsolete()
        killed.clear()

    request_started.connect(next_request)
    try:
        with connection.execute_wrapper(kill):
            yield killed
    finally:
        request_started.disconnect(next_request)
        connection.close()


@contextmanager
def database_fault(kind: str) -> Iterator[None]:
    if kind == "locked":
        with database_locked():
            yield
    else:
        with connection_killed():
            yield


@pytest.mark.parametrize("kind", ["locked", "killed"])
def test_database_down_beside_redis_tracks_serves_and_answers_503(
    kind, transactional_db, redis_settings, make_user, caplog
) -> None:
    user = make_user("reader")
    staff_user = make_user("root", is_staff=True, is_superuser=True)
    browser, staff = Client(), Client()
    browser.force_login(user)
    staff.force_login(staff_user)
    with database_fault(kind):
        assert browser.get("/page/").content == b"ok"
        assert_json_503(browser.post(LOG, event(), content_type="application/json"), "The database")
        for name in V1:  # the live store answers these alone
            assert staff.get(f"/tracking/v1/{name}/").status_code == 200
        listed = staff.get("/tracking/v1/users/").json()["users"]
        assert "reader" in [entry["username"] for entry in listed]  # tracked all along
        assert staff.get(DASHBOARD).status_code == 200
        for name in ["users", "pages"]:  # the current paths and top pages are the database's
            assert_json_503(staff.get(f"{DASHBOARD}data/{name}/"), "The database")
        assert render_tags(user).endswith("[Online now]")  # last seen from the live store
    assert not breaker.failing  # the live store's breaker is for the live store only
    assert not [m for m in warnings_of(caplog) if "the store failed" in m]


@pytest.mark.parametrize("kind", ["locked", "killed"])
def test_database_down_commands_end_with_one_line(kind, transactional_db, redis_settings,
                                                  make_user) -> None:  # fmt: skip
    user = make_user("someone")
    commands = [
        ["active_users_prune_activity", "--days", "1"],
        ["active_users_prune_last_seen", "--days", "1"],
        ["active_users_export_activity", "--since", "2026-01-01", "--until", "2027-01-01"],
        ["active_users_erase_user", str(user.pk)],
    ]
    for args in commands:
        with database_fault(kind):
            assert command_error(*args).startswith("The database failed: ")
    assert not breaker.failing


@pytest.mark.parametrize("kind", ["locked", "killed"])
def test_database_as_the_live_store_down_serves_pages_untracked(
    kind, transactional_db, make_user, staff
) -> None:
    user = make_user("reader")
    browser = Client()
    browser.force_login(user)
    with database_fault(kind):
        assert browser.get("/page/").content == b"ok"
        for name in V1:
            response = staff.get(f"/tracking/v1/{name}/")
            assert response.status_code == 503 and response.json()["error"]
        assert_json_503(browser.post(LOG, event(), content_type="application/json"), "The database")
    # Here the database is the live store: its breaker opened, and closes when it answers.
    breaker.reset()
    assert browser.get("/page/").content == b"ok"
    listed = staff.get("/tracking/v1/users/").json()["users"]
    assert "reader" in [entry["username"] for entry in listed]  # the buffer kept the touch


# -- Sockets: the rooms' Redis, the channel layer, the live store --------------------------


def presence_socket(user: Any) -> Socket:
    from active_users.consumers import PresenceConsumer

    token = sign_room_token("room-1", user, None)
    return Socket(PresenceConsumer.as_asgi(), f"/ws/presence/room-1/?token={token}",
                  user=user, url_route={"args": (), "kwargs": {"room": "room-1"}})  # fmt: skip


async def closed_with_an_error_frame(socket: Socket, layer_down: bool) -> None:
    assert await socket.connect()
    error = await socket.next()
    assert error["type"] == "presence.error"
    assert error["error"] == "Presence is not available right now."
    assert await socket.next() == {"type": "websocket.close", "code": 1013}  # try again later
    if layer_down:  # Channels' own receive loop then fails on the layer, after the close
        with pytest.raises(RedisConnectionError):
            await socket.wait()
    else:
        await socket.wait()


@pytest.mark.parametrize("down", ["rooms", "channel layer"])
def test_a_presence_socket_whose_redis_is_down_gets_an_error_frame_and_closes(
    down, transactional_db, redis_settings, make_user
) -> None:
    # transactional: Channels closes the thread's database connection on each event
    url = closed_redis_url()
    layer = {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    if down == "channel layer":
        layer = {"BACKEND": "channels_redis.core.RedisChannelLayer",
                 "CONFIG": {"hosts": [url]}}  # fmt: skip
    rooms = {"ACTIVE_USERS_REDIS_URL": url} if down == "rooms" else {}
    user = make_user("member")

    async def scenario() -> None:
        await closed_with_an_error_frame(presence_socket(user), down == "channel layer")
        await get_backend().aclose()

    with override_settings(CHANNEL_LAYERS={"default": layer}, **rooms):
        async_to_sync(scenario)()
    assert not breaker.failing or down == "rooms"  # there the rooms' Redis is the live store


def test_the_dashboard_socket_sends_an_error_frame_while_the_store_is_down(
    redis_down, transactional_db, make_user
) -> None:
    from active_users.consumers import DashboardConsumer

    staff = make_user("root", is_staff=True)

    async def scenario() -> None:
        socket = Socket(DashboardConsumer.as_asgi(), "/ws/active-users/dashboard/", user=staff)
        assert await socket.connect()
        frame = await socket.next()
        assert frame == {"type": "counts", "error": "The active users store is not answering."}
        await socket.disconnect()

    async_to_sync(scenario)()
