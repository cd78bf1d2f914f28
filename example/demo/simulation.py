"""A traffic simulator: demo users log in over HTTP and browse, coming and going.

Each simulated browser does what the demo's pages ask of a real one: it posts a page view
to the tracker's endpoint (as ``tracker.js`` would), and on an article page it joins the
presence room over a WebSocket (as ``presence.js`` would) and sends its heartbeats."""

from __future__ import annotations

import html
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http.cookiejar import CookieJar
from typing import Any
from urllib.error import URLError
from urllib.parse import quote, urlencode, urlsplit
from urllib.request import HTTPCookieProcessor, Request, build_opener

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

try:  # installed with uvicorn[standard] (the demo extra)
    from websockets.sync.client import connect as ws_connect
except ImportError:  # pragma: no cover
    ws_connect = None


NAMES = (
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy "
    "rupert sybil trent victor walter"
).split()
PASSWORD = "demo"
PAGES = ["/", "/articles/1/", "/articles/2/", "/articles/3/"]


def demo_usernames(count: int) -> list[str]:
    return [NAMES[n] if n < len(NAMES) else f"user{n + 1}" for n in range(count)]


def ensure_demo_users(count: int) -> None:
    """The staff account admin/admin and ``count`` users with password ``demo``."""
    User = get_user_model()
    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "admin")
    names = set(demo_usernames(count))
    names -= set(User.objects.filter(username__in=names).values_list("username", flat=True))
    password = make_password(PASSWORD)  # one hash for all: creating 50 users takes no time
    User.objects.bulk_create(User(username=name, password=password) for name in sorted(names))


_numbers = itertools.count(1)


def _attribute(page: str, name: str) -> str | None:
    found = re.search(rf'{name}="([^"]*)"', page)
    return html.unescape(found[1]) if found else None


class Browser:
    """One browser: its own cookies, so its own session, and its own user agent (anonymous
    visitors are told apart by address and user agent, and all of these share 127.0.0.1)."""

    def __init__(self, base_url: str, username: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.cookies = CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.cookies))
        self.agent = f"Mozilla/5.0 (X11; Linux x86_64) DemoBrowser/{next(_numbers)}"
        self.opener.addheaders = [("User-Agent", self.agent)]
        self.logged_in = False
        self.online = False
        self.socket: Any = None
        self.heartbeat = 20.0
        self.last_beat = 0.0

    def get(self, path: str) -> str:
        with self.opener.open(self.base_url + path, timeout=10) as response:
            return response.read().decode()

    def log_in(self) -> None:
        form = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        if token is None:
            raise RuntimeError("the login page has no CSRF token")
        data = urlencode(
            {"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token[1]}
        ).encode()
        request = Request(self.base_url + "/accounts/login/", data=data)
        request.add_header("Referer", self.base_url + "/accounts/login/")
        self.opener.open(request, timeout=10).read()
        self.logged_in = True

    def visit(self, path: str, presence: bool = True) -> None:
        """Open a page, then do what its scripts would: post the page view, join presence."""
        self.leave()
        page = self.get(path)
        endpoint = _attribute(page, "data-endpoint")
        if endpoint:
            self.post_pageview(endpoint, _attribute(page, "data-csrf-token") or "", path)
        room = _attribute(page, "data-url")
        if presence and room and ws_connect is not None and "data-active-users-presence" in page:
            self.join(room, _attribute(page, "data-token") or "", page)

    def post_pageview(self, endpoint: str, csrf_token: str, path: str) -> None:
        event = {
            "event": "pageview",
            "date": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "path": path,
            "referer": "",
        }
        request = Request(self.base_url + endpoint, data=json.dumps(event).encode())
        request.add_header("Content-Type", "application/json")
        request.add_header("X-CSRFToken", csrf_token)
        self.opener.open(request, timeout=10).read()

    def join(self, room_path: str, token: str, page: str) -> None:
        url = urlsplit(self.base_url)
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        # Entered as a context manager would enter it (websockets 17 warns otherwise).
        self.socket = ws_connect(
            f"ws://{url.netloc}{room_path}?token={quote(token, safe='')}",
            additional_headers={"Cookie": cookie, "User-Agent": self.agent},
            open_timeout=5,
            close_timeout=1,
        ).__enter__()
        self.heartbeat = max(1.0, float(_attribute(page, "data-heartbeat") or 20))
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        """Read what the room sent, and send the heartbeat when it is due."""
        if self.socket is None:
            return
        try:
            while True:
                self.socket.recv(timeout=0)
        except TimeoutError:
            pass
        if time.monotonic() - self.last_beat >= self.heartbeat:
            self.socket.send(json.dumps({"type": "heartbeat"}))
            self.last_beat = time.monotonic()

    def leave(self) -> None:
        if self.socket is not None:
            socket, self.socket = self.socket, None
            try:
                socket.close()
            except Exception:
                pass


def wait_for(base_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            Browser(base_url).get("/accounts/login/")
            return
        except (URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def simulate(
    base_url: str,
    users: int,
    visitors: int,
    seconds: float,
    say: Callable[[str], Any] = print,
    report_every: float = 60,
    reminder: str = "",
    presence: bool = True,
    stop: threading.Event | None = None,
) -> None:
    """Browse for ``seconds`` (0: until interrupted). Each second every browser may come
    online, go offline, or open a page; the counts on the home page move with them. A
    failure (the server restarting, a refused request) is counted and reported with the
    next status line, never raised: the simulation goes on until ``stop`` is set."""
    rng = random.Random()
    browsers = [Browser(base_url, name) for name in demo_usernames(users)]
    browsers += [Browser(base_url) for _ in range(visitors)]
    end = time.monotonic() + seconds if seconds else float("inf")
    next_report = time.monotonic() + report_every
    failures, last_failure = 0, ""
    try:
        while time.monotonic() < end and not (stop and stop.is_set()):
            tick = time.monotonic()
            for browser in browsers:
                if stop and stop.is_set():
                    break
                try:
                    if browser.online and rng.random() < 0.08:
                        browser.online = False
                        browser.leave()
                    elif not browser.online and rng.random() < 0.15:
                        browser.online = True
                    if browser.online and rng.random() >= 0.4:
                        if browser.username and not browser.logged_in:
                            browser.log_in()
                        browser.visit(rng.choice(PAGES), presence=presence)
                    browser.beat()
                except Exception as exc:
                    browser.leave()
                    failures += 1
                    last_failure = f"{type(exc).__name__}: {exc}"
            if tick >= next_report:
                online = [b for b in browsers if b.online]
                named = sum(1 for b in online if b.username)
                line = f"simulated traffic: {named} users and {len(online) - named} visitors"
                if failures:
                    line += f"; {failures} requests failed (last: {last_failure})"
                    failures = 0
                say(line + (f". {reminder}" if reminder else ""))
                next_report = tick + report_every
            time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
    finally:  # leave the rooms all at once: each close waits for the server's answer
        leaving = [threading.Thread(target=b.leave, daemon=True) for b in browsers if b.socket]
        for thread in leaving:
            thread.start()
        for thread in leaving:
            thread.join(3)
