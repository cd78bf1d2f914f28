"""Presence over WebSockets: two real uvicorn processes with Channels and channels_redis on a
Redis of their own, real WebSocket clients, and a headless Chromium page. Clients get their
room tokens from the room's page, as a browser does (or, for a crowd of anonymous sessions,
signed here with the sites' secret key)."""

from __future__ import annotations

import asyncio
import hashlib
import html
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core import signing
from django.test import override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from active_users.access import SALT, sign_room_token
from active_users.api import get_distinct_active_users_count
from active_users.presence import (
    PRESENCE_SCRIPT,
    get_store,
    present_count,
    present_users,
    room_tag,
)
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


# Commands the presence script runs (MONITOR prints them after the EVALSHA that ran them).
INSIDE = {"zrangebyscore", "zrem", "hincrby", "hdel", "hget", "zadd", "zscore", "hset",
          "zcount", "expire"}  # fmt: skip


class Site:
    """Two uvicorn processes serving ``tests.presence_site`` on one Redis."""

    def __init__(self, redis_url: str, tmp: Path, users: int, visitors: int = 0,
                 **timings: str) -> None:  # fmt: skip
        self.redis_url = redis_url
        self.prefix = f"presence-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.presence_site.settings",
            "PRESENCE_DATABASE_URL": f"sqlite:///{tmp}/presence.sqlite3",
            "PRESENCE_REDIS_URL": redis_url,
            "PRESENCE_PREFIX": self.prefix,
            "PYTHONPATH": str(ROOT),
            "LOAD_FIRST_IS_STAFF": "1",
            **{f"PRESENCE_{k.upper()}": v for k, v in timings.items()},
        }
        done = subprocess.run(
            [sys.executable, "-m", "tests.load_site.manage", "setup", str(users), str(visitors)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        cookies = json.loads(done.stdout.strip().splitlines()[-1])
        self.sessions: list[str] = cookies["users"]
        self.visitors: list[str] = cookies["anonymous_sessions"]
        self.ports = [free_port(), free_port()]
        self.logs = [(tmp / f"uvicorn-{n}.log").open("w") for n in range(2)]
        self.servers = [self._serve(port, log) for port, log in zip(self.ports, self.logs)]
        for port in self.ports:
            self._wait_for(port)

    def _serve(self, port: int, log: Any) -> subprocess.Popen[bytes]:
        app = "tests.presence_site.asgi:application"
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
                   "--port", str(port), "--log-level", "warning"]  # fmt: skip
        return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)

    def _wait_for(self, port: int) -> None:
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"uvicorn did not start on port {port}")

    def settings(self) -> Any:
        """This test process reads the same rooms."""
        return override_settings(
            ACTIVE_USERS_BACKEND="redis",
            ACTIVE_USERS_REDIS_URL=self.redis_url,
            ACTIVE_USERS_KEY_PREFIX=self.prefix,
        )

    def close(self) -> None:
        for server in self.servers:
            server.terminate()
        for server in self.servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for log in self.logs:
            log.close()
            errors = Path(log.name).read_text()
            if errors.strip():
                print(f"--- {log.name}\n{errors[-3000:]}")


@pytest.fixture(scope="module")
def presence_redis() -> Iterator[RedisServer]:
    """A Redis of the presence tests' own, so commands per heartbeat can be counted."""
    server = RedisServer()
    yield server
    server.close()


TOKEN_MAX_AGE = 4.0


@pytest.fixture(scope="module")
def site(presence_redis, tmp_path_factory) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    made = Site(presence_redis.url, tmp_path_factory.mktemp("presence"), users=7,
                token_max_age=str(TOKEN_MAX_AGE))  # fmt: skip
    yield made
    made.close()


def cookie(session: str | None) -> dict[str, str]:
    return {"Cookie": f"sessionid={session}"} if session else {}


def page_token(port: int, room: str, session: str | None) -> str | None:
    """The room token ``{% active_users_presence %}`` signs for this session on the room's
    page (None when the tag rendered nothing)."""
    page = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    page.request("GET", f"/room/{quote(room, safe='')}/", headers=cookie(session))
    response = page.getresponse()
    body = response.read().decode()
    page.close()
    assert response.status == 200
    found = re.search(r'data-token="([^"]*)"', body)
    return html.unescape(found.group(1)) if found else None


def visitor_token(room: str, session: str) -> str:
    """A room token for an anonymous session, signed as the tag signs it."""
    token = sign_room_token(room, AnonymousUser(), SessionStore(session_key=session))
    assert token is not None
    return token


async def open_room(port: int, room: str, session: str | None = None, token: str | None = None,
                    origin: str | None = None) -> Any:  # fmt: skip
    headers = cookie(session) | ({"Origin": origin} if origin else {})
    url = f"ws://127.0.0.1:{port}/ws/presence/{quote(room, safe='')}/"
    if token is not None:
        url += "?token=" + quote(token, safe="")
    return await connect(url, additional_headers=headers, open_timeout=10)


async def refused(port: int, room: str, session: str | None = None, token: str | None = None,
                  origin: str | None = None) -> int:  # fmt: skip
    """The HTTP status of a handshake that must fail."""
    with pytest.raises(InvalidStatus) as caught:
        await open_room(port, room, session, token, origin)
    return caught.value.response.status_code


class Member:
    """A WebSocket client in a room: records every message, heartbeats unless silenced."""

    #: Members not closed yet: a test that fails leaves its own to ``close_members``.
    open: list[Member] = []

    def __init__(self, ws: Any, period: float) -> None:
        self.ws, self.period = ws, period
        self.messages: list[dict[str, Any]] = []
        self.reader = asyncio.ensure_future(self._read())
        self.beater: asyncio.Future[Any] | None = asyncio.ensure_future(self._beat())
        Member.open.append(self)

    @classmethod
    async def join(cls, port: int, room: str, session: str | None = None, period: float = 0.5,
                   token: str | None = None, origin: str | None = None) -> Member:  # fmt: skip
        """Join with ``token``, or else the token the room's page gives ``session``."""
        if token is None:
            token = await asyncio.to_thread(page_token, port, room, session)
        ws = await open_room(port, room, session, token, origin)
        member = cls(ws, period)
        await member.wait("presence.state")
        return member

    async def _read(self) -> None:
        async for raw in self.ws:
            self.messages.append(json.loads(raw))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.ws.send(json.dumps({"type": "heartbeat"}))

    def silence(self) -> None:
        """Stop heartbeats without closing: a client that vanished without a goodbye."""
        if self.beater is not None:
            self.beater.cancel()
            self.beater = None

    def seen(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    async def wait(self, kind: str, where: Callable[[dict[str, Any]], bool] = lambda m: True,
                   timeout: float = 10.0, since: int = 0) -> dict[str, Any]:  # fmt: skip
        """The first message of ``kind`` for which ``where`` holds, from message ``since`` on."""
        return await self._first(lambda m: m["type"] == kind and where(m), f"no {kind} came",
                                 timeout, since)  # fmt: skip

    async def wait_count(self, count: int, timeout: float = 10.0) -> dict[str, Any]:
        """The first message telling the room's count is ``count``: an event, or the state a
        heartbeat sends again when the channel layer lost the event (it delivers at most once)."""
        counted = ("presence.join", "presence.leave", "presence.count", "presence.state")
        return await self._first(lambda m: m["type"] in counted and m["count"] == count,
                                 f"the count never read {count}", timeout, 0)  # fmt: skip

    async def _first(self, match: Callable[[dict[str, Any]], bool], missing: str,
                     timeout: float, since: int) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages[since:]:
                if match(message):
                    return message
            if time.monotonic() > deadline:
                closed = f", the socket closed ({self.ws.close_code})" if self.reader.done() else ""
                raise AssertionError(f"{missing}{closed}; got {self.messages[-5:]}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.silence()
        await self.ws.close()
        self.reader.cancel()
        if self in Member.open:
            Member.open.remove(self)


@pytest.fixture(autouse=True)
async def close_members() -> AsyncIterator[None]:
    """Close what a test left open (it failed before its own ``close()``): a client left
    to the garbage collector warns of its socket during whichever test runs then."""
    yield
    loop = asyncio.get_running_loop()
    for member in list(Member.open):
        if member.reader.get_loop() is loop:  # not those of a test's own asyncio.run()
            await member.close()
    Member.open.clear()


def named(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("user", {}).get("name") == name


async def test_members_on_two_servers_see_each_other_join_and_leave(site: Site) -> None:
    room = "doc 1/ü"  # any string: spaces, slashes, unicode
    ada = await Member.join(site.ports[0], room, site.sessions[0])
    assert ada.seen("presence.state")[0]["count"] == 1
    assert [u["name"] for u in ada.seen("presence.state")[0]["users"]] == ["load0"]
    grace = await Member.join(site.ports[1], room, site.sessions[1])  # the other process
    joined = await ada.wait("presence.join", named("load1"))
    assert joined["count"] == 2 and joined["room"] == room
    state = grace.seen("presence.state")[0]
    assert sorted(u["name"] for u in state["users"]) == ["load0", "load1"]
    with site.settings():
        assert present_count(room) == 2
        assert sorted(u["name"] for u in present_users(room)) == ["load0", "load1"]
        # No HTTP request was made: the connections alone keep both users active.
        assert get_distinct_active_users_count() == 2
    await grace.close()
    left = await ada.wait("presence.leave", named("load1"), timeout=5)
    assert left["count"] == 1
    with site.settings():
        assert present_count(room) == 1
    await ada.close()


async def test_three_tabs_are_one_person_and_a_reload_is_no_leave(site: Site) -> None:
    room = "three-tabs"
    watcher = await Member.join(site.ports[0], room, site.sessions[2])
    try:
        tabs = [await Member.join(site.ports[n % 2], room, site.sessions[3]) for n in range(3)]
        await watcher.wait("presence.join", named("load3"))
        with site.settings():
            assert present_count(room) == 2
        for tab in tabs[:2]:
            await tab.close()
        # The last tab reloads: closes and opens again within the grace. Its page (and
        # token) is fetched first, so that a loaded machine's slow page load does not
        # stretch the reconnection past the grace.
        token = await asyncio.to_thread(page_token, site.ports[1], room, site.sessions[3])
        await tabs[2].close()
        tabs = [await Member.join(site.ports[1], room, site.sessions[3], token=token)]
        await asyncio.sleep(2.5)  # grace (1 s) and a sweep long past
        assert len([m for m in watcher.seen("presence.join") if named("load3")(m)]) == 1
        assert watcher.seen("presence.leave") == []
        await tabs[0].close()
        left = await watcher.wait("presence.leave", named("load3"), timeout=5)
        assert left["count"] == 1
    finally:  # a failure here must not leave a socket for the next test's collector
        await watcher.close()


async def test_a_client_that_goes_silent_is_swept_after_the_timeout(site: Site) -> None:
    room = "silent"
    watcher = await Member.join(site.ports[0], room, site.sessions[4])
    ghost = await Member.join(site.ports[1], room, site.sessions[5])
    await watcher.wait("presence.join", named("load5"))
    ghost.silence()  # no heartbeat, no close: its tab froze or its network went
    started = time.monotonic()
    await watcher.wait("presence.leave", named("load5"), timeout=6)
    waited = time.monotonic() - started
    print(f"silent client announced gone after {waited:.1f} s (timeout 2 s, heartbeat 0.5 s)")
    assert waited >= 1.4  # not before its last heartbeat's deadline
    with site.settings():
        assert present_count(room) == 1
    await ghost.close()
    await watcher.close()


async def test_a_killed_client_process_leaves(site: Site) -> None:
    room = "killed"
    watcher = await Member.join(site.ports[0], room, site.sessions[0])
    token = quote(page_token(site.ports[1], room, site.sessions[1]) or "", safe="")
    script = (
        "import asyncio, sys\n"
        "from websockets.asyncio.client import connect\n"
        "async def main():\n"
        f"    ws = await connect('ws://127.0.0.1:{site.ports[1]}/ws/presence/killed/"
        f"?token={token}',"
        f" additional_headers={{'Cookie': 'sessionid={site.sessions[1]}'}})\n"
        "    await ws.recv()\n"
        "    print('in', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "in"
    await watcher.wait("presence.join", named("load1"))
    child.kill()
    child.wait()
    child.stdout.close()
    await watcher.wait("presence.leave", named("load1"), timeout=6)
    await watcher.close()


async def test_a_heartbeat_is_one_round_trip(site: Site, presence_redis) -> None:  # type: ignore[no-untyped-def]
    sha = hashlib.sha1(PRESENCE_SCRIPT.encode()).hexdigest()
    with site.settings():
        tag = room_tag("quiet")  # sweeps of other tests' rooms may run meanwhile
    member = await Member.join(site.ports[0], "quiet", site.sessions[2], period=3600)
    lines: list[str] = []
    stop = threading.Event()

    def monitor() -> None:  # every command Redis runs, in order, scripts' included
        with presence_redis.client() as client, client.monitor() as stream:
            for command in stream.listen():
                lines.append(command["command"])
                if stop.is_set():
                    return

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    await asyncio.sleep(0.5)
    beats = 15
    for _ in range(beats):
        # Well over half the 0.5 s heartbeat, also on a loaded machine: none is ignored.
        await asyncio.sleep(0.4)
        await member.ws.send(json.dumps({"type": "heartbeat"}))
    await asyncio.sleep(0.5)
    stop.set()
    with presence_redis.client() as pinger:  # closed here, not by a later collection
        await asyncio.to_thread(pinger.ping)  # lets the monitor see the stop
    watcher.join(5)
    calls, inside, current = 0, Counter[str](), False
    for line in lines:
        command = line.split(" ", 1)[0].lower()
        if command == "evalsha":
            current = sha in line and tag in line
            calls += current
        elif current and command in INSIDE:
            inside[command] += 1
        else:
            current = False
    per_beat = ", ".join(f"{k} {v / max(calls, 1):.0f}" for k, v in sorted(inside.items()))
    print(f"per heartbeat: {calls / beats:.2f} round trips of the presence script; commands "
          f"inside: {sum(inside.values()) / max(calls, 1):.0f} ({per_beat})")  # fmt: skip
    assert calls == beats
    await member.close()


async def test_a_change_the_room_was_not_told_of_reaches_it_within_a_heartbeat(site: Site) -> None:
    # The channel layer delivers at most once (a consumer closing while it waits for its
    # process's messages can drop one). Here the room changes with no event at all: the test
    # process writes the rooms' store itself.
    room = "lost events"
    ada = await Member.join(site.ports[0], room, site.sessions[5])
    with site.settings():
        store = get_store()
        try:
            await store.arun("join", room, "elsewhere!1", "u:lost", {"id": "lost", "name": "ghost"})
            state = await ada.wait("presence.state", lambda m: m["count"] == 2, timeout=5)
            assert sorted(user["name"] for user in state["users"]) == ["ghost", "load5"]
            # Gone at once, in one script (a leave and a later sweep could race Ada's
            # heartbeat, whose sweep would announce it), and announced to no one.
            store.erase("u:lost")
            await ada.wait("presence.state", lambda m: m["count"] == 1, timeout=5,
                           since=ada.messages.index(state) + 1)  # fmt: skip
        finally:
            await store.aclose()
    assert [m["count"] for m in ada.seen("presence.state")] == [1, 2, 1]
    assert not ada.seen("presence.leave") and len(ada.seen("presence.join")) == 1  # its own
    await ada.close()


@pytest.fixture(scope="module")
def big_site(presence_redis, tmp_path_factory) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    made = Site(presence_redis.url, tmp_path_factory.mktemp("big"), users=1, visitors=1002,
                heartbeat="5", timeout="15", grace="1", anonymous="1")  # fmt: skip
    yield made
    made.close()


async def test_a_room_of_1000_connections_stays_within_the_count_throttle(big_site: Site) -> None:
    room = "crowd"
    watcher = await Member.join(big_site.ports[0], room, big_site.sessions[0], period=5)
    started = time.monotonic()
    crowd: list[Member] = []
    visitors = iter(big_site.visitors)
    for _ in range(10):
        crowd += await asyncio.gather(*(
            Member.join(big_site.ports[n % 2], room, visitor, period=5,
                        token=visitor_token(room, visitor))
            for n, visitor in zip(range(100), visitors)
        ))  # fmt: skip
    joined_in = time.monotonic() - started
    final = await watcher.wait("presence.count", lambda m: m["count"] == 1001, timeout=10)
    elapsed = time.monotonic() - started
    counts = watcher.seen("presence.count")
    joins = watcher.seen("presence.join")
    rate = len(counts) / elapsed
    print(f"1,000 connections joined in {joined_in:.1f} s; the watcher got {len(joins)} join "
          f"events (room up to 50) and {len(counts)} count events in {elapsed:.1f} s "
          f"({rate:.2f} per second; the throttle allows 1 per second)")  # fmt: skip
    assert final["count"] == 1001
    assert len(joins) <= 50
    assert len(counts) <= elapsed / 1.0 + 2  # at most one per interval, plus the trailing one
    with big_site.settings():
        assert present_count(room) == 1001
    closing = time.monotonic()
    await asyncio.gather(*(member.close() for member in crowd))
    # Back under the list limit, leaves come as presence.leave events again, with the count.
    # (A leave that did not reach Redis in a burst is swept at the 15 s heartbeat deadline.)
    await watcher.wait("presence.leave", lambda m: m["count"] == 1, timeout=25)
    print(
        f"the room was down to the watcher {time.monotonic() - closing:.1f} s after the "
        "1,000 closed (grace 1 s)"
    )
    await watcher.close()


async def test_anonymous_sessions_are_counted_but_not_told_who_is_there(big_site: Site) -> None:
    room, port = "small", big_site.ports[0]
    # A page seen without a session makes one, and signs the token for it.
    page = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    page.request("GET", f"/room/{room}/")
    response = page.getresponse()
    found = re.search(r'data-token="([^"]*)"', response.read().decode())
    session = re.search(r"sessionid=(\w+)", response.getheader("Set-Cookie") or "")
    page.close()
    assert found and session
    anonymous = await Member.join(port, room, session.group(1), token=html.unescape(found[1]))
    user = await Member.join(big_site.ports[1], room, big_site.sessions[0])
    other = big_site.visitors[-1]
    assert await refused(port, room, other, visitor_token(room, big_site.visitors[-2])) == 403
    another = await Member.join(port, room, other, token=visitor_token(room, other))
    # The user is told who is there, the anonymous sessions only how many.
    three = await user.wait_count(3)
    if three["type"] == "presence.join":
        assert three["user"] == {"anonymous": True}
    else:  # the join event was lost on its way, the next heartbeat sent the room again
        anonymous_user, load0 = '{"anonymous": true}', '{"id": "1", "name": "load0"}'
        assert sorted(map(json.dumps, three["users"])) == [anonymous_user, anonymous_user, load0]
    assert sorted(map(json.dumps, user.seen("presence.state")[0]["users"])) == [
        '{"anonymous": true}', '{"id": "1", "name": "load0"}']  # fmt: skip
    state = anonymous.seen("presence.state")[0]
    assert state["count"] == 1 and state["users"] is None
    await anonymous.wait_count(3)
    assert all("user" not in m for m in anonymous.seen("presence.join"))
    assert all(m["users"] is None for m in anonymous.seen("presence.state"))
    for member in (another, user, anonymous):
        await member.close()


@pytest.fixture(scope="module")
def hook_site(presence_redis, tmp_path_factory) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    made = Site(presence_redis.url, tmp_path_factory.mktemp("hook"), users=1, visitors=1,
                anonymous="1", authorize="1")  # fmt: skip
    yield made
    made.close()


async def test_the_authorize_hook_lets_in_whom_it_allows_without_a_token(hook_site: Site) -> None:
    # The site's hook: rooms named staff-… are for staff (load0), the others for anyone.
    port, staff, visitor = hook_site.ports[1], hook_site.sessions[0], hook_site.visitors[0]
    assert page_token(port, "staff-desk", visitor) is None  # the tag asks the hook too
    assert page_token(port, "staff-desk", staff) is not None
    assert await refused(port, "staff-desk", visitor) == 403
    boss = await open_room(port, "staff-desk", staff)  # no token: the hook says yes
    anyone = await open_room(port, "hall", visitor)
    for ws in (boss, anyone):
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "presence.state"
        await ws.close()


def test_the_page_shows_how_many_are_here_in_chromium(site: Site, chromium) -> None:  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{site.ports[0]}"
    chromium.get(base + "/room/chapter-9/")
    chromium.add_cookie({"name": "sessionid", "value": site.sessions[0]})
    chromium.get(base + "/room/chapter-9/")

    def count() -> str:
        return chromium.find_element("css selector", "[data-active-users-presence]").text

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 10
        while count() != text:
            if time.monotonic() > deadline:
                raise AssertionError(f"the page says {count()!r}, not {text!r}")
            time.sleep(0.1)

    wait_for("1 here now")

    async def visit() -> None:
        other = await Member.join(site.ports[1], "chapter-9", site.sessions[1])
        await asyncio.get_running_loop().run_in_executor(None, wait_for, "2 here now")
        await other.close()

    asyncio.run(visit())
    wait_for("1 here now")
    chromium.get("about:blank")


async def test_the_dashboards_counts_are_pushed_to_staff(site: Site) -> None:
    import http.client

    def visit(session: str) -> None:
        page = http.client.HTTPConnection("127.0.0.1", site.ports[1], timeout=10)
        page.request("GET", "/room/lobby/", headers={"Cookie": f"sessionid={session}"})
        assert page.getresponse().status == 200
        page.close()

    url = f"ws://127.0.0.1:{site.ports[0]}/ws/active-users/dashboard/"
    staff = await connect(url, additional_headers={"Cookie": f"sessionid={site.sessions[0]}"})
    first = json.loads(await asyncio.wait_for(staff.recv(), 5))
    assert first["type"] == "counts" and set(first) == {"type", "entries", "users", "visitors"}
    before = first["users"]
    # A user no other test of the module uses: not active already, so a newcomer.
    await asyncio.get_running_loop().run_in_executor(None, visit, site.sessions[6])
    started = time.monotonic()
    # No one expires while the module runs (the site's KEY_EXPIRE): the next count that
    # differs is the newcomer's.
    while (pushed := json.loads(await asyncio.wait_for(staff.recv(), 5)))["users"] == before:
        pass
    assert pushed["users"] == before + 1
    print(f"the dashboard heard of a new user {time.monotonic() - started:.2f} s after")
    await staff.close()

    for headers in ({"Cookie": f"sessionid={site.sessions[1]}"}, {}):  # a member, nobody
        with pytest.raises(InvalidStatus) as caught:
            await connect(url, additional_headers=headers)
        assert caught.value.response.status_code == 403
    # Staff, but from a page of another site.
    with pytest.raises(InvalidStatus) as caught:
        await connect(url, additional_headers={**cookie(site.sessions[0]),
                                               "Origin": "https://elsewhere.example"})  # fmt: skip
    assert caught.value.response.status_code == 403


async def test_a_room_opens_only_with_a_token_for_that_room_and_that_person(site: Site) -> None:
    port, ada, bob = site.ports[0], site.sessions[0], site.sessions[2]
    ada_token = page_token(port, "doc-42", ada)
    assert ada_token is not None
    assert page_token(port, "doc-42", None) is None  # anonymous presence is off: no tag
    assert await refused(port, "doc-42") == 403  # anonymous, no token
    assert await refused(port, "doc-42", token=ada_token) == 403  # anonymous, someone's token
    assert await refused(port, "doc-42", bob) == 403  # logged in, no token
    assert await refused(port, "doc-42", bob, ada_token) == 403  # logged in, Ada's token
    assert await refused(port, "doc-43", ada, ada_token) == 403  # Ada, another room's token
    forged = signing.dumps(["doc-42", "u:1"], salt=SALT, key="not-the-sites-secret-key")
    assert await refused(port, "doc-42", ada, forged) == 403
    assert await refused(port, "doc-42", ada, ada_token[:-2] + "xx") == 403  # altered
    member = await Member.join(port, "doc-42", ada, token=ada_token)
    assert member.seen("presence.state")[0]["count"] == 1
    await member.close()


async def test_an_expired_token_is_refused_and_an_open_socket_gets_fresh_ones(site: Site) -> None:
    port, room, ada = site.ports[1], "long-lived", site.sessions[0]
    signed_at = time.monotonic()
    first = page_token(port, room, ada)
    member = await Member.join(port, room, ada, token=first)
    await asyncio.sleep(signed_at + TOKEN_MAX_AGE + 1.2 - time.monotonic())
    assert await refused(port, room, ada, first) == 403  # the page's token, too old now
    renewed = member.seen("presence.token")
    print(f"{len(renewed)} fresh tokens in {TOKEN_MAX_AGE + 1.2:g} s (max age {TOKEN_MAX_AGE:g} s)")
    assert len(renewed) >= 3 and renewed[-1]["max_age"] == TOKEN_MAX_AGE
    await member.close()
    again = await Member.join(port, room, ada, token=renewed[-1]["token"])  # a reconnect
    assert again.seen("presence.state")[0]["count"] == 1
    await again.close()


async def test_a_cross_site_origin_is_refused_and_the_sites_own_accepted(site: Site) -> None:
    port, ada = site.ports[0], site.sessions[0]
    token = page_token(port, "origins", ada)
    assert token is not None
    for origin in ("https://elsewhere.example", "null", f"http://127.0.0.1:{port}.example"):
        assert await refused(port, "origins", ada, token, origin) == 403
    member = await Member.join(port, "origins", ada, token=token, origin=f"http://127.0.0.1:{port}")
    assert member.seen("presence.state")[0]["users"][0]["name"] == "load0"
    await member.close()
