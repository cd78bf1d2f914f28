"""The admin dashboard: who may see it, what its JSON says, and a real Chromium watching it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from active_users import clock
from active_users.backends import Presence, get_backend
from active_users.history import record_minute
from active_users.models import Activity
from tests.bulk import bulk_touch

DASHBOARD = "/admin/active_users/dashboard/"
DATA = DASHBOARD + "data/"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def login(make_user, **fields) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user(**fields))
    return client


@pytest.mark.usefixtures("backend_name")
def test_staff_open_the_dashboard_from_the_admin_index(make_user) -> None:
    staff = login(make_user, is_staff=True)
    index = staff.get("/admin/").content.decode()
    assert f'href="{DASHBOARD}"' in index
    page = staff.get(DASHBOARD)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Active users" in html and 'id="au-history-chart"' in html
    assert "active_users/vendor/uplot/uPlot.iife.min.js" in html
    assert f'data-counts-url="{DATA}counts/"' in html


@pytest.mark.usefixtures("backend_name")
def test_anyone_else_gets_no_dashboard_and_no_data(make_user) -> None:
    for client in (Client(), login(make_user)):
        for url in (DASHBOARD, DATA + "counts/", DATA + "users/", DATA + "history/"):
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert f'href="{DASHBOARD}"' not in login(make_user).get("/admin/").content.decode()


@override_settings(ACTIVE_USERS_API_PERMISSION="public")
def test_the_dashboards_data_stays_staff_only_when_the_public_api_is_opened(make_user) -> None:
    member = login(make_user)
    assert member.get("/tracking/v1/counts/").status_code == 200
    assert member.get(DATA + "users/").status_code == 302


@pytest.mark.usefixtures("backend_name")
def test_the_users_table_pages_searches_and_shows_the_current_path(make_user) -> None:
    for n in range(4):
        login(make_user, username=f"reader{n}").get("/page/")
    ada = make_user(username="ada")
    browser = Client()
    browser.force_login(ada)
    browser.get("/page/")
    Activity.objects.create(user=ada, date=timezone.now(), event="pageview", path="/docs/intro")
    staff = login(make_user, username="boss", is_staff=True)
    staff.get("/page/")
    first = staff.get(DATA + "users/", {"limit": 3}).json()
    second = staff.get(DATA + "users/", {"limit": 3, "cursor": first["next"]}).json()
    rows = first["users"] + second["users"]
    assert sorted(r["username"] for r in rows) == ["ada", "boss", *(f"reader{n}" for n in range(4))]
    assert {r["status"] for r in rows} == {"online"}
    assert [r["path"] for r in rows if r["username"] == "ada"] == ["/docs/intro"]
    found = staff.get(DATA + "users/", {"search": "READER"}).json()["users"]
    assert sorted(r["username"] for r in found) == [f"reader{n}" for n in range(4)]
    make_user(username="reader-never")
    never = staff.get(DATA + "users/", {"search": "never"}).json()["users"]
    assert [(r["username"], r["status"], r["last_seen"]) for r in never] == [
        ("reader-never", "offline", None)
    ]
    refused = staff.get(DATA + "users/", {"search": "x" * 151})
    assert refused.status_code == 400 and refused.json()["error"].startswith("search")


@pytest.mark.django_db
def test_top_pages_count_distinct_sessions_of_the_last_minutes(make_user) -> None:
    now = timezone.now()
    for session in ("a", "b", "c"):
        Activity.objects.create(session=session, date=now, event="pageview", path="/popular")
    Activity.objects.create(session="a", date=now, event="heartbeat", path="/popular")
    Activity.objects.create(session="a", date=now, event="pageview", path="/quiet")
    Activity.objects.create(
        session="d", date=now - timezone.timedelta(hours=1), event="pageview", path="/old"
    )
    staff = login(make_user, is_staff=True)
    pages = staff.get(DATA + "pages/").json()
    assert pages["enabled"] is True
    assert [(p["path"], p["people"]) for p in pages["pages"]] == [("/popular", 3), ("/quiet", 1)]


def post_event(client: Client, date: datetime, path: str):  # type: ignore[no-untyped-def]
    body = {"date": date.isoformat(), "path": path}
    return client.post("/tracking/log/", json.dumps(body), content_type="application/json")


def top_paths(staff: Client) -> list[str]:
    return [p["path"] for p in staff.get(DATA + "pages/").json()["pages"]]


def test_an_event_dated_tomorrow_is_stored_at_arrival_and_leaves_the_top_pages_in_time(
    make_user,
) -> None:
    reader = login(make_user)
    now = datetime.now(dt_timezone.utc)
    arrival = time.time()
    assert post_event(reader, now + timedelta(hours=23), "/tomorrow").status_code == 201
    assert post_event(reader, now, "/today").status_code == 201
    stored = clock.to_timestamp(Activity.objects.get(path="/tomorrow").date)
    assert arrival <= stored <= time.time()
    staff = login(make_user, is_staff=True)
    assert sorted(top_paths(staff)) == ["/today", "/tomorrow"]
    time.sleep(0.3)
    with override_settings(ACTIVE_USERS_ONLINE_AFTER=0.2):  # both are older than the window
        assert top_paths(staff) == []


@pytest.mark.django_db
def test_the_now_windows_ignore_rows_dated_in_the_future(make_user) -> None:
    reader = make_user(username="reader")
    later = clock.from_timestamp(time.time() + 3600)  # written before dates were clamped
    Activity.objects.create(user=reader, session="f", date=later, event="pageview", path="/later")
    now = clock.now()
    Activity.objects.create(user=reader, session="n", date=now, event="pageview", path="/now")
    browser = Client()
    browser.force_login(reader)
    browser.get("/page/")
    staff = login(make_user, is_staff=True)
    assert top_paths(staff) == ["/now"]
    rows = staff.get(DATA + "users/", {"search": "reader"}).json()["users"]
    assert [r["path"] for r in rows] == ["/now"]


# The browser


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    from selenium.common.exceptions import NoSuchElementException

    def met() -> bool:
        try:
            return condition()
        except NoSuchElementException:  # the next page is not there yet
            return False

    deadline = time.monotonic() + timeout
    while not met():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'the browser'}")
        time.sleep(0.1)


def text(driver, element_id: str) -> str:  # type: ignore[no-untyped-def]
    return driver.find_element("id", element_id).text


def shoot(driver, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    driver.set_window_size(1280, 1500)
    driver.save_screenshot(str(target))
    driver.set_window_size(1280, 900)
    return target


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(
    ACTIVE_USERS_HISTORY=True,
    ACTIVE_USERS_DASHBOARD_REFRESH=1,
    ACTIVE_USERS_KEY_EXPIRE=300,
    ACTIVE_USERS_EXCLUDE_URL_PATTERNS=[r"^/admin/"],  # the admin watching is not counted
)
def test_a_staff_member_watches_the_dashboard_move_in_chromium(
    chromium, live_server, django_user_model, redis_settings
) -> None:
    backend = get_backend()
    backend.clear_history()
    try:
        watch_the_dashboard(chromium, live_server, django_user_model)
    finally:
        chromium.get("about:blank")  # no late request may reach the server after the test
        time.sleep(1.0)
        backend.clear()
        backend.clear_history()


def watch_the_dashboard(chromium, live_server, django_user_model) -> None:  # type: ignore[no-untyped-def]
    django_user_model.objects.create_user("boss", password="pw", is_staff=True)
    chromium.get(live_server.url + "/admin/login/?next=" + DASHBOARD)
    chromium.find_element("id", "id_username").send_keys("boss")
    chromium.find_element("id", "id_password").send_keys("pw")
    chromium.find_element("css selector", "input[type=submit]").click()
    wait_for(lambda: text(chromium, "au-status").startswith("Updated"), what="the first refresh")
    assert text(chromium, "au-users") == "0"
    assert "Nobody is active" in text(chromium, "au-users-empty")
    chart = chromium.find_element("id", "au-history-chart")
    assert chart.find_elements("css selector", "canvas"), "no chart was drawn"
    print("screenshot:", shoot(chromium, "dashboard-empty.png"))

    # Other people browse the site; the page counts them without being reloaded.
    readers = []
    for name in ("ada", "grace", '<img src=x onerror="document.title=1">'):
        reader = django_user_model.objects.create_user(name, password="pw")
        client = Client()
        client.force_login(reader)
        assert client.get("/page/").status_code == 200
        readers.append(client)
    url_before = chromium.current_url
    wait_for(lambda: text(chromium, "au-users") == "3", what="the count to reach 3")
    assert chromium.current_url == url_before
    # The counts and the list come from two requests: the list may follow a refresh later.
    rows = "#au-users-table tbody tr"
    wait_for(lambda: len(chromium.find_elements("css selector", rows)) == 3, what="3 rows")
    assert '<img src=x onerror="document.title=1">' in text(chromium, "au-users-table")
    assert not chromium.find_elements("css selector", "#au-users-table img")

    # An hour of traffic, minute by minute through the store, then 100,000 people at once.
    now = time.time()
    for minutes_ago in range(59, 0, -1):
        moment = now - minutes_ago * 60
        people = 50 * (60 - minutes_ago)
        bulk_touch((Presence(f'["u{n}"]', f"u{n}") for n in range(people)), moment)
        record_minute(now=moment)
    bulk_touch((Presence(f'["u{n}","s","10.0.0.1","user{n}"]', f"u{n}") for n in range(100_000)),
               time.time())  # fmt: skip
    wait_for(lambda: text(chromium, "au-users") == "100,003", what="the count of 100,003")
    chromium.find_element("css selector", "[data-range='1h']").click()
    # 2,950 a minute ago, unless that minute is the one the live server's own sampler took
    # when the readers came (a minute boundary passed since): then 2,900 two minutes ago.
    wait_for(lambda: int(chart.get_attribute("data-max-users") or 0) >= 2900,
             what="the hour's chart")  # fmt: skip
    assert chart.get_attribute("data-points") == "60"
    # Uniques refresh every 12 refreshes; HyperLogLog is within about 1 %.
    wait_for(lambda: int(text(chromium, "au-dau").replace(",", "")) > 98_000, what="the DAU")
    print("screenshot:", shoot(chromium, "dashboard-busy.png"))

    chromium.find_element("id", "au-next").click()
    wait_for(lambda: chromium.find_element("id", "au-first").is_enabled(), what="page two")
    chromium.find_element("id", "au-search-text").send_keys("grace")
    chromium.find_element("css selector", "#au-search button[type=submit]").click()
    wait_for(lambda: text(chromium, "au-users-table").count("grace") == 1, what="the search")
    assert len(chromium.find_elements("css selector", "#au-users-table tbody tr")) == 1
