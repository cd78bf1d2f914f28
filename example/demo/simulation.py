"""A traffic simulator: demo users log in over HTTP and browse, coming and going."""

from __future__ import annotations

import itertools
import random
import re
import time
from http.cookiejar import CookieJar
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

from django.contrib.auth import get_user_model

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
    for name in demo_usernames(count):
        if not User.objects.filter(username=name).exists():
            User.objects.create_user(name, password=PASSWORD)


_numbers = itertools.count(1)


class Browser:
    """One browser: its own cookies, so its own session, and its own user agent (anonymous
    visitors are told apart by address and user agent, and all of these share 127.0.0.1)."""

    def __init__(self, base_url: str, username: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))
        agent = f"Mozilla/5.0 (X11; Linux x86_64) DemoBrowser/{next(_numbers)}"
        self.opener.addheaders = [("User-Agent", agent)]
        self.logged_in = False
        self.online = False

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


def simulate(base_url: str, users: int, visitors: int, seconds: float, say=print) -> None:  # type: ignore[no-untyped-def]
    """Browse for ``seconds`` (0: until interrupted). Each second every browser may come
    online, go offline, or open a page; the counts on the home page move with them."""
    rng = random.Random()
    browsers = [Browser(base_url, name) for name in demo_usernames(users)]
    browsers += [Browser(base_url) for _ in range(visitors)]
    end = time.monotonic() + seconds if seconds else float("inf")
    next_report = 0.0
    while time.monotonic() < end:
        tick = time.monotonic()
        for browser in browsers:
            if browser.online and rng.random() < 0.08:
                browser.online = False
            elif not browser.online and rng.random() < 0.15:
                browser.online = True
            if not browser.online or rng.random() < 0.4:
                continue
            try:
                if browser.username and not browser.logged_in:
                    browser.log_in()
                browser.get(rng.choice(PAGES))
            except (URLError, OSError) as exc:
                say(f"request failed: {exc}")
        if tick >= next_report:
            online = [b for b in browsers if b.online]
            named = sum(1 for b in online if b.username)
            say(f"simulated traffic: {named} users and {len(online) - named} visitors browsing")
            next_report = tick + 10
        time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
