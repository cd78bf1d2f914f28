"""``USE_TZ = False`` in a time zone far from UTC: every page, endpoint and command that
reads or writes a time.

Every test here runs with ``USE_TZ = False`` and ``TIME_ZONE = "Pacific/Kiritimati"``
(UTC+14), where a naive local time and UTC are 14 hours apart (and a day apart for most of
it), so a time that bypasses ``active_users.clock`` shows: as a 500 (naive minus aware), as
SQLite's refusal of an aware value in a query, or as a time hours off. CI also runs the
whole suite in this setting (``ACTIVE_USERS_TEST_USE_TZ=0``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from active_users import api, clock
from active_users.last_seen import flush_last_seen, last_seen, status, status_of
from active_users.models import Activity, LastSeen

ZONE = "Pacific/Kiritimati"
DATA = "/admin/active_users/dashboard/data/"
DATA_VIEWS = ("counts", "users", "history", "uniques", "pages")
LOG = "/tracking/log/"


@pytest.fixture(autouse=True)
def far_from_utc() -> Iterator[None]:
    with override_settings(USE_TZ=False, TIME_ZONE=ZONE):
        yield


def local_now() -> datetime:
    """The wall clock of Kiritimati, naive: what the site's own times must read."""
    return datetime.now(ZoneInfo(ZONE)).replace(tzinfo=None)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")


def instant(text: str) -> float:
    """The UNIX time of an ISO 8601 string that carries its offset."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert timezone.is_aware(moment), f"{text} has no offset"
    return moment.timestamp()


def login(make_user, **fields) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user(**fields))
    return client


def post_event(client: Client, date: str, path: str = "/here/"):  # type: ignore[no-untyped-def]
    return client.post(LOG, json.dumps({"date": date, "path": path}),
                       content_type="application/json")  # fmt: skip


@pytest.mark.usefixtures("backend_name")
def test_last_seen_is_the_local_wall_clock_and_the_status_online(make_user) -> None:
    user = make_user()
    login(make_user).get("/page/")
    browser = Client()
    browser.force_login(user)
    browser.get("/page/")
    seen = last_seen(user)
    assert seen is not None and timezone.is_naive(seen)
    assert abs((local_now() - seen).total_seconds()) < 5
    assert status(user) == "online"
    flush_last_seen(force=True)
    stored = LastSeen.objects.get(user=user).last_activity
    assert timezone.is_naive(stored) and abs((local_now() - stored).total_seconds()) < 5
    assert status_of(seen - timedelta(minutes=10)) == "idle"
    assert status_of(datetime.now(dt_timezone.utc)) == "online"  # an aware time compares too
    [entry, _] = sorted(api.get_active_users_page().users, key=lambda e: e["username"])
    assert timezone.is_naive(entry["last_active"])


def test_the_user_admin_shows_the_last_seen_columns(make_user) -> None:
    recent, old = make_user("recent"), make_user("old")
    LastSeen.objects.create(user=recent, last_activity=clock.ago(60))
    LastSeen.objects.create(user=old, last_activity=clock.ago(timedelta(days=3)))
    admin = login(make_user, username="root", is_staff=True, is_superuser=True)
    page = admin.get("/admin/auth/user/")
    assert page.status_code == 200
    rows = {
        name: row
        for row in re.findall(r"<tr.*?</tr>", page.content.decode(), re.S)
        for name in ("recent", "old")
        if f">{name}<" in row
    }
    assert 'alt="True"' in rows["recent"] and 'alt="True"' not in rows["old"]
    hour = admin.get("/admin/auth/user/", {"last_seen": "hour"}).content.decode()
    assert ">recent<" in hour and ">old<" not in hour


def test_log_stores_the_instant_of_an_aware_date_and_refuses_a_naive_one(make_user) -> None:
    browser = login(make_user)
    sent = time.time() - 60
    utc = datetime.fromtimestamp(sent, dt_timezone.utc)
    east = utc.astimezone(dt_timezone(timedelta(hours=5)))
    assert post_event(browser, utc_iso(utc)).status_code == 201
    assert post_event(browser, east.isoformat()).status_code == 201
    stored = list(Activity.objects.values_list("date", flat=True))
    assert len(stored) == 2 and all(timezone.is_naive(d) for d in stored)
    assert all(abs(clock.to_timestamp(d) - sent) < 0.01 for d in stored)
    naive = post_event(browser, local_now().isoformat())
    assert naive.status_code == 400 and "time zone" in naive.json()["error"]
    assert Activity.objects.count() == 2


def test_a_date_ahead_of_the_server_is_stored_at_its_arrival(make_user) -> None:
    browser = login(make_user)
    tomorrow = datetime.now(dt_timezone.utc) + timedelta(hours=23)
    assert post_event(browser, utc_iso(tomorrow)).status_code == 201
    stored = Activity.objects.get().date
    assert abs((local_now() - stored).total_seconds()) < 5


@pytest.mark.usefixtures("backend_name")
def test_the_dashboards_json_answers_and_its_times_carry_an_offset(make_user) -> None:
    reader = login(make_user, username="reader")
    reader.get("/page/")
    assert post_event(reader, utc_iso(datetime.now(dt_timezone.utc)), "/docs/").status_code == 201
    staff = login(make_user, is_staff=True)
    answers = {name: staff.get(DATA + f"{name}/") for name in DATA_VIEWS}
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 200)
    assert [p["path"] for p in answers["pages"].json()["pages"]] == ["/docs/"]
    rows = {r["username"]: r for r in answers["users"].json()["users"]}
    assert rows["reader"]["path"] == "/docs/" and rows["reader"]["status"] == "online"
    assert abs(instant(rows["reader"]["last_seen"]) - time.time()) < 5
    assert abs(instant(answers["counts"].json()["time"]) - time.time()) < 5
    last_point = answers["history"].json()["points"][-1]
    assert 0 <= time.time() - instant(last_point["time"]) < 120
    assert answers["uniques"].json()["today"] == local_now().date().isoformat()
    v1 = staff.get("/tracking/v1/users/").json()["users"]
    assert all(abs(instant(u["last_active"]) - time.time()) < 5 for u in v1)


def test_the_export_reads_local_dates_and_writes_times_with_their_offset(db, tmp_path) -> None:
    midnight = datetime(2026, 1, 1)  # Kiritimati; 2025-12-31T10:00:00Z
    Activity.objects.bulk_create(
        Activity(date=midnight + timedelta(hours=n), event="pageview", path=f"/p/{n}")
        for n in range(30)
    )

    def export(since: str, until: str) -> list[dict[str, str]]:
        out = StringIO()
        call_command("active_users_export_activity", "--since", since, "--until", until,
                     "--format", "jsonl", stdout=out, stderr=StringIO())  # fmt: skip
        return [json.loads(line) for line in out.getvalue().splitlines()]

    local = export("2026-01-01", "2026-01-01T03:00:00")
    assert [r["path"] for r in local] == ["/p/0", "/p/1", "/p/2"]
    assert [r["date"] for r in local] == [f"2025-12-31T{h}:00:00+00:00" for h in (10, 11, 12)]
    assert export("2025-12-31T10:00:00Z", "2025-12-31T12:30:00+00:00") == local
    assert len(export("2026-01-01", "2026-01-02")) == 24


@pytest.mark.usefixtures("backend_name")
def test_the_active_users_command_shows_ages_and_times_with_their_offset(make_user) -> None:
    login(make_user, username="reader").get("/page/")
    table, as_json = StringIO(), StringIO()
    call_command("active_users", stdout=table)
    assert re.search(r"reader.* [0-4] s ago", table.getvalue())
    call_command("active_users", "--json", stdout=as_json)
    [entry] = json.loads(as_json.getvalue())["active_users"]
    assert abs(instant(entry["last_active"]) - time.time()) < 5
