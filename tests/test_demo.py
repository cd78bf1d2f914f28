"""The demo site, run as the README runs it: ``manage.py demo 0.0.0.0:PORT``, a real server
(uvicorn: pages and WebSockets), a throwaway redis-server for presence, and the traffic
simulator; checked as a visitor and as the staff user it prints would see it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote, urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from websockets.sync.client import connect

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


class Visitor:
    """A browser of the test's own: cookies, GET, log in."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.cookies))

    def get(self, path: str, **headers: str) -> str:
        with self.opener.open(Request(self.base + path, headers=headers), timeout=10) as r:
            return r.read().decode()

    def json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def log_in(self, username: str, password: str) -> None:
        form = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        assert token is not None
        data = urlencode({"username": username, "password": password,
                          "csrfmiddlewaretoken": token[1]}).encode()  # fmt: skip
        self.opener.open(Request(self.base + "/accounts/login/", data=data), timeout=10).read()
        assert "sessionid" in {c.name for c in self.cookies}, "the log in failed"


def eventually(check: Callable[[], Any], what: str, deadline: float) -> Any:
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what}; last: {last!r}")


@pytest.mark.slow
def test_the_demo_shows_counts_activity_top_pages_and_presence(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "DEMO_DATABASE": str(tmp_path / "demo.sqlite3")}
    for name in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "DEMO_PRESENCE_REDIS_URL"):
        env.pop(name, None)
    demo = subprocess.Popen(
        [sys.executable, "example/manage.py", "demo", f"0.0.0.0:{port}", "--users", "6",
         "--visitors", "3"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        visitor = Visitor(base)
        home = eventually(lambda: visitor.get("/"), "the demo never answered", deadline)
        assert "Where to look" in home and "/admin/active_users/dashboard/" in home
        # Any host: a phone on the LAN reaches the site by the machine's address.
        assert "Who is here now" in visitor.get("/", Host=f"192.168.1.20:{port}")

        staff = Visitor(base)
        staff.log_in("admin", "admin")
        counts = eventually(
            lambda: (c := staff.json("/active-users/v1/counts/"))["users"] > 0 and c,
            "no simulated user became active", deadline,
        )  # fmt: skip
        assert counts["entries"] > 0
        assert staff.json("/active-users/active-users-info/")["count"] > 0
        data = "/admin/active_users/dashboard/data/"
        top = eventually(lambda: staff.json(data + "pages/")["pages"], "no top pages", deadline)
        assert {page["path"] for page in top} <= {"/", "/articles/1/", "/articles/2/",
                                                  "/articles/3/"}  # fmt: skip
        eventually(
            lambda: any(u["path"] for u in staff.json(data + "users/")["users"]),
            "no active user has a current page", deadline,
        )  # fmt: skip
        activities = staff.get("/admin/active_users/activity/")
        assert any(f'<td class="field-path">{page["path"]}</td>' in activities for page in top)
        assert '<td class="field-event">pageview</td>' in activities
        with pytest.raises(HTTPError) as refused:
            staff.get("/active-users/log/")
        assert refused.value.code == 405 and b"POST" in refused.value.read()

        # Presence: the article page carries the tag; its token opens the room.
        article = staff.get("/articles/2/")
        assert "data-active-users-presence" in article and "here now" in article
        room = re.search(r'data-url="([^"]+)" data-token="([^"]+)"', article)
        assert room is not None
        cookie = "; ".join(f"{c.name}={c.value}" for c in staff.cookies)
        url = f"ws://127.0.0.1:{port}{room[1]}?token={quote(room[2], safe='')}"
        with connect(url, additional_headers={"Cookie": cookie}, open_timeout=10) as socket:
            state = json.loads(socket.recv(timeout=10))
        assert state["type"] == "presence.state" and state["count"] >= 1
        assert "admin" in json.dumps(state["users"])
    finally:
        demo.send_signal(signal.SIGTERM)
        output = demo.communicate(timeout=40)[0].decode()
    assert demo.returncode == 0, output
    assert "Log in as admin / admin" in output and f"http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert "GET /" not in output, "the server's access log is not quiet"
    with pytest.raises(OSError):  # the server is gone with the demo
        Visitor(base).get("/")
    # The demo's SQLite file is in WAL mode (check active_users.W003).
    import sqlite3

    with sqlite3.connect(tmp_path / "demo.sqlite3") as database:
        assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_traffic_simulator_outlives_a_server_that_does_not_answer() -> None:
    sys.path.insert(0, str(ROOT / "example"))
    try:
        from demo.simulation import simulate
    finally:
        sys.path.remove(str(ROOT / "example"))
    said: list[str] = []
    simulate(f"http://127.0.0.1:{free_port()}", 20, 10, 3.5, say=said.append, report_every=1)
    assert said, "the simulator reported nothing"
    assert any("requests failed (last: URLError" in line for line in said), said
