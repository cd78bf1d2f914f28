"""Hostile input at every entry point the package adds.

Over-long, non-UTF-8, control and bidi characters, markup, forged cursors and tokens, wrong
methods and content types, huge and deeply nested JSON, concurrent calls: each is refused
with a 4xx JSON naming the problem (on a socket: an error frame, and the socket stays open),
or rendered harmless. Never a 500; nothing stored when refused; nothing about users shown to
whom may not see it; a refused input never opens the store's circuit breaker. Hostile
*output* (terminal escapes, CSV formulas) is ``test_hostile_output.py``; who may join a room,
``test_presence_access.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from datetime import datetime, timedelta, timezone
from io import StringIO
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.db import connections
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings

from active_users import api, clock
from active_users.access import sign_room_token
from active_users.backends.base import encode_cursor
from active_users.backends.health import breaker
from active_users.exceptions import BadRequest
from active_users.inputs import MAX_JSON_BYTES, MAX_JSON_DEPTH, json_depth, parse_json
from active_users.models import Activity, LastSeen
from tests.redis_server import free_port

LOG = "/tracking/log/"
V1 = ["/tracking/v1/counts/", "/tracking/v1/users/", "/tracking/v1/history/",
      "/tracking/v1/uniques/", "/tracking/active-users-info/",
      "/active-users/active-users-info/"]  # fmt: skip
DASHBOARD = "/admin/active_users/dashboard/"
DASHBOARD_DATA = [f"{DASHBOARD}data/{name}/" for name in
                  ("counts", "users", "history", "uniques", "pages")]  # fmt: skip
PAGED = ["/tracking/v1/users/", "/tracking/active-users-info/", f"{DASHBOARD}data/users/"]

MARKUP = "<script>alert(1)</script>"
NASTY = [
    "x" * 20_000,  # over-long
    "\x00", "a\x00b", "\x1b]0;pwned\x07\x1b[2J", "admin\u202egnp.exe", "\u2066\u2069",
    MARKUP, "'\"><img src=x onerror=alert(1)>", "%", "_", "\\", "%00", "%ff",
    "-1", "0", "1e3", "NaN", "Infinity", "9" * 400, "9" * 5000, "\uff11\uff10", "\u00b2",
    "\u0665", " 5", "5 ",
]  # fmt: skip
PARAMETERS = ["limit", "cursor", "range", "days", "months", "search"]
DEEP = "[" * 8000 + "]" * 8000  # 16 KB: a RecursionError for an unguarded parser


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FORGED_CURSORS = [
    raw_cursor("[NaN,0]"), raw_cursor("[Infinity,0]"), raw_cursor("[-Infinity,0]"),
    raw_cursor("[1e999,0]"), raw_cursor("[1.5,1e400]"), raw_cursor("[1.5," + "9" * 5000 + "]"),
    encode_cursor(1.5, 2**70), encode_cursor(1.5, -1), encode_cursor(-1.5, 0),
    encode_cursor(1e300, 2), encode_cursor(True, 0), encode_cursor(1.5), encode_cursor(1.5, 0, 0),
    encode_cursor("2026-01-01T00:00:00+00:00", 2**70),
    encode_cursor("2026-01-01T00:00:00+00:00", -5),
    encode_cursor("0001-01-01T00:00:00+14:00", 1),  # before year 1 in UTC
    encode_cursor("9999-12-31T23:59:59-14:00", 1),  # after year 9999 in UTC
    # Naive with USE_TZ, aware without: never the form this server gives out.
    encode_cursor("2026-01-01T00:00:00" + ("" if settings.USE_TZ else "+00:00"), 1),
    encode_cursor("x" * 60, 1), encode_cursor("2026-01-01" + " " * 100, 1),
    "A" * 10_000, "!!!", "\x00", "\u202e", raw_cursor("[" * 100 + "]" * 100), raw_cursor("{}"),
]  # fmt: skip


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest, db: None) -> str:
    """Runs a test on the database backend and on the Redis backend."""
    if request.param == "redis":
        request.getfixturevalue("redis_settings")
    return str(request.param)


def login(make_user: Any, **fields: Any) -> Client:
    browser = Client()
    browser.force_login(make_user(**fields))
    return browser


def refused(response: Any, status: int | None = None, field: str | None = "?") -> dict[str, Any]:
    """The package's JSON error: a 4xx, ``{"error": message, "field": name or null}``."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json", response.content[:300]
    body = json.loads(response.content)
    assert set(body) == {"error", "field"} and isinstance(body["error"], str) and body["error"]
    if field != "?":
        assert body["field"] == field, body
    return dict(body)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# --- The JSON views: v1, the old JSON view and the dashboard's JSON ---------------------


@pytest.mark.parametrize("url", V1 + DASHBOARD_DATA)
def test_hostile_query_strings_get_200_or_a_json_400_never_a_500(store, make_user, url) -> None:
    staff = login(make_user, username="boss", is_staff=True)
    for name in PARAMETERS:
        for value in NASTY:
            response = staff.get(url, {name: value})
            if response.status_code != 200:
                body = refused(response, 400)
                assert body["field"] == name or (name == "cursor" and body["field"] == "limit")
    assert not breaker.failing


@pytest.mark.parametrize("url", V1 + DASHBOARD_DATA)
def test_bytes_that_are_not_utf8_and_too_many_fields_in_the_query(make_user, url) -> None:
    staff = login(make_user, is_staff=True)
    for query in ("limit=%ff%fe", "cursor=%c3%28", "search=%ed%a0%80", "%ff=%ff"):
        assert staff.get(url, QUERY_STRING=query).status_code in (200, 400)
    response = staff.get(url, QUERY_STRING="&".join(["a=1"] * 1100))
    if url.rstrip("/").rsplit("/", 1)[-1] not in ("counts", "pages"):  # they read no parameter
        refused(response, 400, "query")


@pytest.mark.parametrize("url", PAGED)
def test_forged_cursors_get_400_and_never_open_the_breaker(store, make_user, url) -> None:
    staff = login(make_user, is_staff=True)
    for n in range(3):
        login(make_user, username=f"u{n}").get("/page/")
    for cursor in FORGED_CURSORS:
        body = refused(staff.get(url, {"limit": 2, "cursor": cursor}), 400, "cursor")
        assert body["error"].startswith("cursor:")
        assert not breaker.failing and breaker.allows()
    first = staff.get(url, {"limit": 2})
    assert first.status_code == 200
    following = first.json()["next"]
    assert staff.get(url, {"limit": 2, "cursor": following}).status_code == 200


def test_the_page_function_refuses_forged_cursors_before_the_store(store) -> None:
    for cursor in FORGED_CURSORS:
        with pytest.raises(BadRequest, match=r"^cursor: "):
            api.get_active_users_page(5, cursor)
        with pytest.raises(ValueError):
            asyncio.run(api.aget_active_users_page(5, cursor))
    assert not breaker.failing
    assert api.get_active_users_page(5).users == []


@pytest.mark.parametrize("url", V1)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options", "trace"])
def test_other_methods_and_bodies_get_a_json_405_before_anything_is_parsed(
    make_user, url, method
) -> None:
    staff = login(make_user, is_staff=True)
    for data, content_type in (
        (DEEP, "application/json"),
        ("garbage", "multipart/form-data"),  # no boundary: Django cannot parse it
        ("&".join(["a=1"] * 1100), "application/x-www-form-urlencoded"),
    ):
        response = getattr(staff, method)(url, data, content_type=content_type)
        body = refused(response, 405, "method")
        assert method.upper() in body["error"] and response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("url", V1)
def test_who_may_not_see_users_learns_nothing_whatever_they_send(make_user, url) -> None:
    login(make_user, username="secret-name")
    for browser in (Client(), login(make_user, username="plain")):
        for query in ({"limit": "5", "cursor": FORGED_CURSORS[0]}, {"search": "secret"},
                      {"limit": MARKUP}, {"range": "\x00"}):  # fmt: skip
            response = browser.get(url, query)
            refused(response, 403, None)
            assert b"secret-name" not in response.content


def test_the_dashboard_json_is_for_staff_whatever_the_query(make_user) -> None:
    login(make_user, username="secret-name")
    for browser in (Client(), login(make_user, username="plain")):
        for url in DASHBOARD_DATA:
            response = browser.get(url, {"search": "secret", "cursor": FORGED_CURSORS[0]})
            assert response.status_code == 302 and b"secret-name" not in response.content


def test_a_search_with_like_wildcards_matches_them_literally(store, make_user) -> None:
    staff = login(make_user, username="boss", is_staff=True)
    make_user("ann")
    for text in ("%", "_", "\\", "%_%"):
        response = staff.get(f"{DASHBOARD}data/users/", {"search": text})
        assert response.status_code == 200 and response.json()["users"] == []


# --- The dashboard page and the admin changelists -------------------------------------


ADMIN_PAGES = [DASHBOARD, "/admin/active_users/activity/", "/admin/active_users/sessioninfo/",
               "/admin/active_users/lastseen/", "/admin/auth/user/"]  # fmt: skip
ADMIN_QUERIES = [
    {"q": value} for value in ("\x00", "a\x00b", MARKUP, "x" * 5000, "\u202e", "%", "\\")
] + [
    {"o": "99"}, {"o": "-1.x"}, {"p": "99999999999999999999"}, {"p": "-1"},
    {"last_seen": MARKUP}, {"last_seen": "\x00"}, {"event": MARKUP},
    {"date__gte": "not a date"}, {"date__gte": "2026-02-30"}, {"user__id__exact": "abc"},
    {"user__id__exact": "9" * 30}, {MARKUP: MARKUP},
]  # fmt: skip


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages_answer_hostile_query_strings_without_a_500_or_raw_markup(
    make_user, url
) -> None:
    staff = login(make_user, username="boss", is_staff=True, is_superuser=True)
    Activity.objects.create(date=clock.now(), event="pageview", path=MARKUP)
    for query in ADMIN_QUERIES:
        response = staff.get(url, query)
        assert response.status_code in (200, 302, 400), (query, response.status_code)
        assert MARKUP.encode() not in response.content, query
    response = staff.get(url, QUERY_STRING="q=%ff%fe&o=%c3%28")
    assert response.status_code in (200, 302, 400)


def test_a_hostile_path_stored_by_log_is_shown_escaped_in_the_admin(make_user) -> None:
    visitor = Client()
    for path in (MARKUP, "/\u202egnp.exe", "/a'\"<b>"):
        response = visitor.post(LOG, json.dumps({"date": now_iso(), "path": path}),
                                content_type="application/json")  # fmt: skip
        assert response.status_code == 201
    staff = login(make_user, is_staff=True, is_superuser=True)
    page = staff.get("/admin/active_users/activity/").content.decode()
    assert MARKUP not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page


# --- log/ -----------------------------------------------------------------------------


BODIES = [
    # (body, content type, extra headers, status, field, words in the message)
    (DEEP, "application/json", {}, 400, "body", "nested deeper"),
    ('{"a":' * 2500 + "1" + "}" * 2500, "application/json", {}, 400, "body", "nested deeper"),
    ('{"date": "' + "x" * 20_000 + '"}', "application/json", {}, 413, "body", "bytes"),
    (b'{"date": "\xff"}', "application/json", {}, 400, "body", "not UTF-8"),
    ('{"date": "@now"}'.encode("utf-16"), "application/json", {}, 400, "body", "not UTF-8"),
    ('{"date": NaN}', "application/json", {}, 400, "body", "malformed JSON"),
    ('{"date": 1' + "0" * 5000 + "}", "application/json", {}, 400, "body", "malformed JSON"),
    ('{"date": "@now"', "application/json", {}, 400, "body", "malformed JSON"),
    ("", "application/json", {}, 400, "date", "required"),  # no body: no content type either
    ('{"date": "@now", "path": "/\\u001b[2J"}', "application/json", {}, 400, "path", "control"),
    ('{"date": "@now", "path": "/\\ud800"}', "application/json", {}, 400, "path", "Unicode"),
    ('{"date": "@now", "event": "<b>"}', "application/json", {}, 400, "event", "unknown"),
    ('{"date": "@now", "path": {"a": [1]}}', "application/json", {}, 400, "path", "string"),
    ("garbage", "multipart/form-data", {}, 400, "body", "multipart"),
    ("&".join(["a=1"] * 1100), "application/x-www-form-urlencoded", {}, 400, "body", "fields"),
    ("date=%ff", "application/x-www-form-urlencoded", {}, 400, "date", "ISO 8601"),
    # Django 5.1+ refuses a form not in UTF-8 (field "body"); 4.2 decodes it (field "date").
    ("date=@now", "application/x-www-form-urlencoded; charset=utf-16", {}, 400, "?", ""),
    ("date=@now", "application/x-www-form-urlencoded", {"HTTP_REFERER": "http://[::1"}, 400,
     "path", "Referer"),
    ('{"date": "@now"}', "text/plain", {}, 400, "date", "required"),
    ('{"date": "@now"}', "application/json", {"CONTENT_LENGTH": "abc"}, 400, "body", "number"),
    ('{"date": "@now"}', "application/json", {"CONTENT_LENGTH": str(10**12)}, 413, "body", ""),
    ('{"date": "@now"}', "application/json", {"HTTP_USER_AGENT": "\x1b[2J"}, 400, "user agent",
     "control"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "extra", "status", "field", "words"), BODIES)
def test_log_refuses_hostile_bodies_with_json_and_stores_nothing(
    store, body, content_type, extra, status, field, words
) -> None:
    if isinstance(body, str):
        body = body.replace("@now", now_iso())
    visitor = Client()
    if "CONTENT_LENGTH" in extra:  # the test client would read that many bytes: call the view
        from active_users.views import log_activity

        request = RequestFactory().post(LOG, body, content_type=content_type, **extra)
        request.session = Client().session
        request.user = AnonymousUser()
        response = log_activity(request)
    else:
        response = visitor.post(LOG, body, content_type=content_type, **extra)
    answer = refused(response, status, field)
    assert words in answer["error"]
    assert not Activity.objects.exists()
    assert not breaker.failing


def test_a_body_over_django_s_own_limit_gets_the_same_json(db) -> None:
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        body = json.dumps({"date": now_iso(), "path": "/" + "p" * 500})
        refused(Client().post(LOG, body, content_type="application/json"), 413, "body")
        refused(Client().post(LOG, {"date": now_iso(), "path": "/" + "p" * 500}), 413, "body")
    assert not Activity.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options"])
def test_log_answers_other_methods_with_a_json_405(db, method) -> None:
    send = getattr(Client(), method)
    response = send(LOG, {"q": MARKUP}) if method == "get" else send(LOG, DEEP, "application/json")
    refused(response, 405, "method")
    assert response["Allow"] == "POST"
    assert Client().head(LOG).status_code == 405


def test_a_forged_token_is_refused_with_401_and_no_csrf_is_a_403(make_user) -> None:
    body = json.dumps({"date": now_iso()})
    for token in ("Token " + "x" * 5000, "Token \x00", "Token " + MARKUP, "Token", "Token a b"):
        refused(Client().post(LOG, body, content_type="application/json",
                              HTTP_AUTHORIZATION=token), 401, "authorization")  # fmt: skip
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user())
    for token in ("", "x" * 5000, MARKUP):
        refused(browser.post(LOG, body, content_type="application/json",
                             HTTP_X_CSRFTOKEN=token), 403, "csrf")  # fmt: skip
    assert not Activity.objects.exists()


# --- The rate limit of log/ -----------------------------------------------------------


def post_event(browser: Client, **extra: str) -> int:
    body = json.dumps({"date": now_iso(), "path": "/p"})
    return int(browser.post(LOG, body, content_type="application/json", **extra).status_code)


@override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="3/m")
def test_made_up_session_cookies_do_not_mint_rate_limit_buckets(db) -> None:
    caches["default"].clear()
    codes = []
    for n in range(6):
        browser = Client()
        browser.cookies["sessionid"] = f"{n:032d}"
        codes.append(post_event(browser))
    assert codes == [201, 201, 201, 429, 429, 429]
    assert post_event(Client(), REMOTE_ADDR="203.0.113.9") == 201  # another address
    assert Activity.objects.count() == 4


@override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="3/m")
def test_sessions_that_exist_have_buckets_of_their_own(make_user) -> None:
    caches["default"].clear()
    ann, bob = login(make_user, username="ann"), login(make_user, username="bob")
    assert [post_event(ann) for _ in range(4)] == [201, 201, 201, 429]
    assert [post_event(bob) for _ in range(4)] == [201, 201, 201, 429]


@override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="3/m", ACTIVE_USERS_STORE_IP=False)
def test_the_rate_limit_keeps_neither_ips_nor_session_keys_in_the_cache(make_user) -> None:
    cache = caches["default"]
    cache.clear()
    ann = login(make_user, username="ann")
    post_event(Client(), REMOTE_ADDR="203.0.113.77")
    post_event(ann, REMOTE_ADDR="198.51.100.23")
    keys = [key for key in cache._cache if ":active_users:rate:" in key]  # type: ignore[attr-defined]
    assert len(keys) == 2
    session_key = ann.cookies["sessionid"].value
    for key in keys:
        assert "203.0.113" not in key and "198.51.100" not in key and session_key not in key
    assert set(Activity.objects.values_list("ip", flat=True)) == {None}


def test_a_rate_limit_cache_that_is_down_lets_requests_through_with_one_warning(db, caplog) -> None:
    down = {"BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}  # fmt: skip
    settings = {"CACHES": {**_caches(), "down": down}, "ACTIVE_USERS_CACHE": "down",
                "ACTIVE_USERS_ACTIVITY_RATE_LIMIT": "1/m"}  # fmt: skip
    with override_settings(**settings), caplog.at_level(logging.WARNING, "active_users"):
        assert [post_event(Client()) for _ in range(3)] == [201, 201, 201]
    warnings = [r for r in caplog.records if "rate limit" in r.getMessage()]
    assert len(warnings) == 1 and "'down'" in warnings[0].getMessage()
    assert Activity.objects.count() == 3
    assert not breaker.failing  # the live store's breaker is not the cache's


def _caches() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.CACHES)


@pytest.mark.django_db(transaction=True)
@override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="4/m")
def test_concurrent_posts_are_counted_exactly_and_never_fail() -> None:
    if connections["default"].vendor == "sqlite":
        pytest.skip("in-memory SQLite fails concurrent writers at once; run on PostgreSQL/MariaDB")
    caches["default"].clear()
    start, codes = threading.Barrier(6), []

    def post() -> None:
        browser = Client()
        start.wait()
        try:
            codes.append(post_event(browser))
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [201] * 4 + [429] * 2
    assert Activity.objects.count() == 4


# --- The JSON reader ------------------------------------------------------------------


def test_the_json_reader_counts_depth_without_recursion_and_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": [1, {"c": "]\\"{{{"}]}') == 3
    assert json_depth("[" * 100_000, limit=10) == 11
    assert parse_json('{"a": [[[[[[[[1]]]]]]]]}') == {"a": [[[[[[[[1]]]]]]]]}
    with pytest.raises(BadRequest, match="nested deeper than 10"):
        parse_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(BadRequest) as too_big:
        parse_json("[" + "1," * MAX_JSON_BYTES + "1]")
    assert too_big.value.status == 413
    with pytest.raises(BadRequest, match="malformed JSON"):
        parse_json("[Infinity]")


# --- The WebSockets -------------------------------------------------------------------


class Socket(ApplicationCommunicator):  # type: ignore[misc]
    """A WebSocket client talking ASGI to the package's routes, in this process (Channels'
    ``WebsocketCommunicator`` without the Daphne it imports)."""

    def __init__(self, path: str, user: Any) -> None:
        from active_users.routing import websocket_urlpatterns

        route, _, query = path.partition("?")
        scope = {"type": "websocket", "path": route, "query_string": query.encode(),
                 "headers": [], "subprotocols": [], "user": user}  # fmt: skip
        super().__init__(URLRouter(websocket_urlpatterns), scope)

    async def connect(self) -> bool:
        await self.send_input({"type": "websocket.connect"})
        return bool((await self.receive_output(5))["type"] == "websocket.accept")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = {"text": text_data} if text_data is not None else {"bytes": bytes_data}
        await self.send_input({"type": "websocket.receive", **frame})

    async def receive_json(self) -> Any:
        return json.loads((await self.receive_output(5))["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(1)


def _user(pk: int, **fields: Any) -> Any:
    return get_user_model()(pk=pk, username=f"ws{pk}", is_active=True, **fields)


async def _close_clients() -> None:
    from active_users.backends import get_backend
    from active_users.presence import get_store

    await get_backend().aclose()  # type: ignore[attr-defined]
    await get_store().aclose()


@pytest.fixture
async def sockets(redis_settings: dict[str, object], transactional_db: None) -> Any:
    """The Redis backend (presence needs Redis); its async clients closed at the end. The
    database is open to every thread: Channels closes old connections around each event."""
    yield
    await _close_clients()


async def _open(path: str, user: Any) -> Socket:
    socket = Socket(path, user)
    assert await socket.connect(), path
    return socket


SOCKET_MESSAGES = [
    (DEEP, "nested deeper"),
    ("x" * (MAX_JSON_BYTES + 1), "bytes"),
    ('{"type": "heartbeat"', "malformed JSON"),
    ('{"type": NaN}', "malformed JSON"),
    ("\x00\x1b[2J", "malformed JSON"),
    ("", "malformed JSON"),
]


async def _refused_messages_leave_the_socket_open(socket: Socket) -> None:
    for message, words in SOCKET_MESSAGES:
        await socket.send_to(text_data=message)
        frame = await socket.receive_json()
        assert frame["type"] == "error" and frame["field"] == "message", frame
        assert words in frame["error"]
    await socket.send_to(bytes_data=b"\xff\xfe")
    frame = await socket.receive_json()
    assert frame["type"] == "error" and "binary" in frame["error"]
    await socket.send_to(text_data='{"type": "heartbeat"}')  # still served
    assert await socket.receive_nothing(timeout=0.2)


async def test_the_presence_socket_answers_hostile_messages_and_stays_open(sockets) -> None:
    room = f"doc-{MARKUP}"
    user = _user(7)
    path = f"/ws/presence/{room}/?token={sign_room_token(room, user, None)}"
    with override_settings(ACTIVE_USERS_PRESENCE_GRACE=0):
        socket = await _open(path, user)
        state = await socket.receive_json()
        assert state["type"] == "presence.state" and state["room"] == room
        await socket.receive_json()  # the fresh token
        await _refused_messages_leave_the_socket_open(socket)
        await socket.disconnect()
        await asyncio.sleep(0.2)  # the sweep after the (zero) grace period
        await _close_clients()


@pytest.mark.parametrize(
    ("room", "token"),
    [
        ("doc-1", "forged"),
        ("doc-1", "x" * 10_000),
        ("doc-1", "\x00"),
        ("doc-1", "@other-room"),
        ("r" * 201, "@same"),  # a room name over 200 characters
        ("doc-1", ""),
    ],
)
async def test_the_presence_socket_refuses_forged_tokens_and_over_long_rooms(
    sockets, room, token
) -> None:
    user = _user(8)
    if token == "@other-room":
        token = sign_room_token("doc-2", user, None) or ""
    elif token == "@same":
        token = sign_room_token(room, user, None) or ""
    assert not await Socket(f"/ws/presence/{room}/?token={token}", user).connect()


async def test_the_dashboard_socket_answers_hostile_messages_and_stays_open(sockets) -> None:
    socket = await _open("/ws/active-users/dashboard/", _user(9, is_staff=True))
    counts = await socket.receive_json()
    assert counts["type"] == "counts"
    await _refused_messages_leave_the_socket_open(socket)
    await socket.disconnect()


async def test_the_dashboard_socket_is_refused_to_non_staff(sockets) -> None:
    inactive_staff = _user(11, is_staff=True)
    inactive_staff.is_active = False
    for user in (AnonymousUser(), _user(10), inactive_staff):
        assert not await Socket("/ws/active-users/dashboard/", user).connect()


# --- Template tags and filters --------------------------------------------------------


def render(text: str, user: Any = None, **context: Any) -> str:
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    request.session = Client().session
    return Template("{% load active_users %}" + text).render(
        Context({"request": request, **context})
    )


@pytest.mark.parametrize("room", [*NASTY[:9], 12345, None, ["a"]])
def test_the_presence_tag_renders_any_room_name_harmlessly(make_user, room) -> None:
    html = render("{% active_users_presence room %}", make_user(), room=room)
    assert MARKUP not in html and "<img" not in html and "\x00" not in html
    assert html.count("<script") == 1 and html.count('"') % 2 == 0


def test_the_tracker_tag_escapes_a_hostile_endpoint(db) -> None:
    html = render("{% active_users_tracker endpoint %}", endpoint='"><script>alert(1)</script>')
    assert MARKUP not in html and html.count("<script") == 1


@pytest.mark.parametrize("limit", ["abc", -1, 0, 10**9, None, "1e3", "\x00", MARKUP, 2.5])
def test_the_list_tag_renders_nothing_for_a_limit_it_cannot_use(store, make_user, limit) -> None:
    staff = make_user(is_staff=True)
    html = render("{% active_users_list limit as entries %}{{ entries|length }}", staff,
                  limit=limit)  # fmt: skip
    assert html in ("0", "1", "2")


def test_the_last_seen_filters_take_any_value(store) -> None:
    text = "[{{ v|last_seen }}|{{ v|last_seen_text }}|{{ v|online_status }}|{{ v|is_online }}]"
    for value in (None, AnonymousUser(), "abc", MARKUP, 10**30, -1, "1\x00", {"a": 1}, ["1"],
                  2.5, "", "9" * 5000):  # fmt: skip
        assert render(text, v=value) == "[None|Never seen|offline|False]", value
    assert not breaker.failing


# --- Management commands --------------------------------------------------------------


EXPORT = ["active_users_export_activity", "--since", "2026-01-01", "--until", "2026-01-02"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["active_users", "--watch", "--interval", "-1"], "--interval"),
        (["active_users", "--watch", "--interval", "nan"], "--interval"),
        (["active_users", "--watch", "--interval", "inf"], "--interval"),
        (["active_users", "--watch", "--interval", "\x1b[2J"], "not a number"),
        (["active_users", "--limit", "0"], "--limit"),
        (["active_users", "--limit", "9" * 30], "--limit"),
        (["active_users", "--times", "-1"], "--times"),
        (["active_users_export_activity", "--since", "2026-02-30", "--until", "2026-03-01"],
         "--since"),
        (["active_users_export_activity", "--since", "2026-01-01", "--until", "2026-13-01"],
         "--until"),
        (["active_users_export_activity", "--since", "2026-01-01T25:00:00Z", "--until",
          "2026-01-02"], "--since"),
        (["active_users_export_activity", "--since", "yesterday\x1b[2J", "--until",
          "2026-01-02"], "--since"),
        ([*EXPORT, "--output", "/no/such/folder/out.csv"], "no such folder"),
        ([*EXPORT, "--output", "/no/such/\x1b[2J/out.csv"], "no such folder"),
        ([*EXPORT, "--output", "@folder"], "Cannot write"),
        ([*EXPORT, "--format", "xml"], "--format"),
        (["active_users_prune_last_seen", "--days", "-1"], "--days"),
        (["active_users_prune_last_seen", "--days", "10000000"], "--days"),
        (["active_users_prune_last_seen", "--days", "ten"], "--days"),
        (["active_users_prune_activity", "--days", "-5"], "--days"),
        (["active_users_prune_activity", "--days", "1e9"], "--days"),
        (["active_users_erase_user", "abc"], "Not a user id"),
        (["active_users_erase_user", "9" * 30], "Not a user id"),
        (["active_users_erase_user", ""], "Not a user id"),
        (["active_users_erase_user", "1\x00"], "Not a user id"),
    ],
)  # fmt: skip
def test_commands_refuse_bad_arguments_in_one_line_and_change_nothing(
    make_user, tmp_path, args, words
) -> None:
    user = make_user()
    LastSeen.objects.create(user=user, last_activity=clock.now() - timedelta(days=9))
    new_year = clock.normalize(datetime(2026, 1, 1, 1, tzinfo=timezone.utc))
    Activity.objects.create(user=user, date=new_year, event="pageview")
    args = [str(tmp_path) if a == "@folder" else a for a in args]
    with pytest.raises(CommandError) as refusal:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    message = str(refusal.value)
    assert words in message and "\n" not in message
    assert "\x1b" not in message and "\x00" not in message
    assert LastSeen.objects.count() == 1 and Activity.objects.count() == 1
