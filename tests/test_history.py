"""History: per-minute samples, hourly peaks, daily/weekly/monthly uniques, on every backend."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

import jsonschema
import pytest
from django.db import connection
from django.test import Client, override_settings

from active_users import clock, history
from active_users.backends import Presence, get_backend
from active_users.history import get_history, get_uniques, record_minute
from tests.bulk import bulk_touch

pytestmark = [
    pytest.mark.usefixtures("backend_name"),
    pytest.mark.django_db(transaction=True),
]

# A fixed moment, 10:00:30 on a Wednesday in the site's TIME_ZONE, so minutes and days are
# known whatever USE_TZ and TIME_ZONE are.
NOON = clock.to_timestamp(datetime(2026, 11, 18, 10, 0, 30))


@pytest.fixture(autouse=True)
def _history_on():  # type: ignore[no-untyped-def]
    with override_settings(ACTIVE_USERS_HISTORY=True, ACTIVE_USERS_TRACK_ANONYMOUS=True):
        get_backend().clear_history()
        yield
        get_backend().clear_history()


def user(n: int, session: str = "s") -> Presence:
    return Presence(f'["{n}", "{session}{n}"]', str(n))


def visitor(n: int) -> Presence:
    return Presence(f"visitor-{n}")


def touch(presences: list[Presence], at: float) -> None:
    backend = get_backend()
    for presence in presences:
        backend.touch(presence, now=at)


def test_a_minute_is_sampled_once_fleet_wide_with_the_live_counts() -> None:
    touch([user(1), user(2), user(2, "other-browser"), visitor(1)], NOON)
    sample = record_minute(now=NOON)
    assert sample is not None
    assert (sample.start, sample.entries, sample.users, sample.visitors) == (
        NOON - 30, 3, 2, 1,
    )  # fmt: skip
    assert record_minute(now=NOON + 10) is None  # the minute is taken


def test_the_last_hour_is_sixty_points_with_each_sample_in_its_minute() -> None:
    touch([user(1)], NOON - 120)
    record_minute(now=NOON - 120)
    touch([user(1), user(2), user(3)], NOON)
    record_minute(now=NOON)
    points = get_history("1h", now=NOON)
    assert len(points) == 60
    steps = {(b.time - a.time).total_seconds() for a, b in pairwise(points)}
    assert steps == {60.0}
    assert clock.to_timestamp(points[-1].time) == NOON - 30
    assert [p.users for p in points[-3:]] == [1, 0, 3]  # KEY_EXPIRE is 20 s: no carry
    assert sum(p.users for p in points[:-3]) == 0


def test_day_and_month_ranges_have_the_documented_shape() -> None:
    assert len(get_history("24h", now=NOON)) == 1440
    week = get_history("7d", now=NOON)
    assert len(week) == 7 * 24
    assert {(b.time - a.time).total_seconds() for a, b in pairwise(week)} == {3600.0}
    assert len(get_history("30d", now=NOON)) == 30 * 24
    with pytest.raises(ValueError, match="range"):
        get_history("2y")


def test_an_hour_keeps_the_peak_of_its_minutes() -> None:
    touch([user(n) for n in range(5)], NOON)
    record_minute(now=NOON)
    touch([user(9)], NOON + 600)  # ten minutes on: the five have expired
    record_minute(now=NOON + 600)
    hours = get_history("7d", now=NOON + 600)
    assert (hours[-1].users, hours[-1].entries) == (5, 5)
    minutes = get_history("1h", now=NOON + 600)
    assert (minutes[-11].users, minutes[-1].users) == (5, 1)


@override_settings(ACTIVE_USERS_KEY_EXPIRE=300)
def test_a_quiet_minute_keeps_the_sample_while_its_people_still_count_as_active() -> None:
    touch([user(1), user(2)], NOON)
    record_minute(now=NOON)
    points = get_history("1h", now=NOON + 600)
    # Sampled at minute 0; minutes 1-4 are within KEY_EXPIRE of it; 5-10 are not.
    assert [p.users for p in points[-11:]] == [2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0]


@override_settings(ACTIVE_USERS_HISTORY_MINUTE_RETENTION=1)
def test_minutes_past_retention_are_dropped_and_their_hour_stays() -> None:
    touch([user(1)], NOON)
    record_minute(now=NOON)
    touch([user(2)], NOON + 7200)
    record_minute(now=NOON + 7200)
    backend = get_backend()
    minutes = backend.samples(False, int(NOON) - 86400, int(NOON) + 86400)
    assert [s.start for s in minutes] == [NOON + 7200 - 30]
    hours = backend.samples(True, int(NOON) - 86400, int(NOON) + 86400)
    assert [s.users for s in hours] == [1, 1]


def test_unique_users_per_day_week_and_month() -> None:
    day = 86400
    touch([user(1), user(2), visitor(1)], NOON - 20 * day)
    touch([user(2), user(3)], NOON - 3 * day)
    touch([user(3), user(3, "phone"), user(4), visitor(2), visitor(3)], NOON)
    touch([user(4)], NOON + 60)  # again the same day: counted once
    found = get_uniques(days=30, months=2, now=NOON)
    assert (found["dau"], found["wau"], found["mau"]) == (2, 3, 4)
    assert (found["dau_visitors"], found["wau_visitors"], found["mau_visitors"]) == (2, 2, 3)
    assert found["dau_mau"] == 0.5
    assert found["today"] == "2026-11-18" and len(found["days"]) == 30
    assert found["days"][-1] == {"date": "2026-11-18", "users": 2, "visitors": 2}
    assert found["days"][-4] == {"date": "2026-11-15", "users": 2, "visitors": 0}
    assert found["months"] == [
        {"month": "2026-10", "users": 2, "visitors": 1},  # 20 days before: 29 October
        {"month": "2026-11", "users": 3, "visitors": 2},
    ]


@override_settings(TIME_ZONE="America/New_York")
def test_days_follow_the_sites_time_zone() -> None:
    late_evening = datetime(2026, 11, 19, 3, 0, tzinfo=timezone.utc).timestamp()  # 22:00 EST
    touch([user(1)], late_evening)
    found = get_uniques(days=2, months=1, now=late_evening)
    assert found["today"] == "2026-11-18"
    assert [d["users"] for d in found["days"]] == [0, 1]


@pytest.mark.background_sampler
def test_with_history_off_nothing_is_sampled_or_counted() -> None:
    with override_settings(ACTIVE_USERS_HISTORY=False):
        touch([user(1)], NOON)
        history.sampler.maybe_sample()
        assert history.sampler.thread is None or not history.sampler.thread.is_alive()
        assert get_uniques(days=1, months=1, now=NOON)["dau"] == 0
        assert sum(p.users for p in get_history("1h", now=NOON)) == 0
    assert get_uniques(days=1, months=1, now=NOON)["dau"] == 0


@pytest.mark.background_sampler
def test_a_request_starts_the_minutes_sample_in_the_background(
    backend_name, django_user_model
) -> None:
    if backend_name == "database" and connection.vendor == "sqlite":
        pytest.skip("a thread's connection to in-memory SQLite would race this test's")
    member = django_user_model.objects.create_user("sampled", password="pw")
    browser = Client()
    browser.force_login(member)
    history.sampler.reset()
    assert browser.get("/page/").status_code == 200
    assert history.sampler.thread is not None
    history.sampler.thread.join(5)
    now = time.time()
    assert get_history("1h", now=now)[-1].users == 1
    assert get_uniques(days=1, months=1, now=now)["dau"] == 1


def test_the_api_serves_history_and_uniques_to_staff_only(make_user) -> None:
    # An id no user of this test's database has: the staff member's own is counted apart.
    touch([user(10_001), visitor(1)], time.time())
    record_minute()
    staff = Client()
    staff.force_login(make_user(is_staff=True))
    found = staff.get("/tracking/v1/history/", {"range": "1h"}).json()
    assert found["range"] == "1h" and found["step"] == 60 and len(found["points"]) == 60
    assert set(found["points"][-1]) == {"time", "entries", "users", "visitors"}
    assert found["points"][-1]["users"] == 1
    uniques = staff.get("/tracking/v1/uniques/", {"days": 7, "months": 3}).json()
    # user 1 and the staff member, whose own requests count
    assert uniques["dau"] == 2 and len(uniques["days"]) == 7 and len(uniques["months"]) == 3
    for query, field in [({"range": "2y"}, "range"), ({"days": "-1"}, "days"),
                         ({"months": "99"}, "months")]:  # fmt: skip
        url = "/tracking/v1/history/" if "range" in query else "/tracking/v1/uniques/"
        response = staff.get(url, query)
        assert response.status_code == 400 and response.json()["error"].startswith(field)
    nobody = Client()
    nobody.force_login(make_user())
    for url in ("/tracking/v1/history/", "/tracking/v1/uniques/"):
        assert Client().get(url).status_code == 403
        assert nobody.get(url).status_code == 403


def test_hyperloglog_counts_100000_users_within_two_percent(backend_name) -> None:
    if backend_name == "database":
        pytest.skip("the database counts exactly (one row per person and day)")
    total = bulk_touch((user(n) for n in range(100_000)), NOON)
    found = get_uniques(days=1, months=1, now=NOON)
    print(f"HyperLogLog of {total:,} users: dau {found['dau']:,}, mau {found['mau']:,}")
    for counted in (found["dau"], found["wau"], found["mau"], found["months"][0]["users"]):
        assert abs(counted - total) / total <= 0.02
    assert get_backend().counts(NOON).users == total  # the live count stays exact


def test_a_day_far_in_the_past_is_forgotten_after_retention(backend_name) -> None:
    day = 86400
    with override_settings(ACTIVE_USERS_HISTORY_DAY_RETENTION=10):
        touch([user(1)], NOON - 12 * day)
        touch([user(2)], NOON)
        if backend_name != "database":
            # Redis forgets by TTL: check the old day's key expires within retention.
            backend = get_backend()
            old = backend._unique_key("users", "2026-11-06")
            assert 0 < backend.client.ttl(old) <= 10 * day + day
            return
        record_minute(now=NOON)
        found = get_uniques(days=15, months=1, now=NOON)
    assert found["days"][2] == {"date": "2026-11-06", "users": 0, "visitors": 0}
    assert found["mau"] == 1


def test_the_openapi_description_matches_real_answers(make_user) -> None:
    spec = json.loads((Path(__file__).parent.parent / "docs" / "openapi.json").read_text())
    jsonschema.Draft202012Validator.check_schema(spec["components"]["schemas"]["History"])
    touch([user(1), visitor(1)], time.time())
    staff = Client()
    staff.force_login(make_user(is_staff=True))
    staff.get("/page/")
    for path, operation in spec["paths"].items():
        response = staff.get("/tracking" + path)
        schema = operation["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate(response.json(), {**schema, "components": spec["components"]})
        refused = staff.get("/tracking" + path, {"limit": "x", "range": "x", "days": "x"})
        if path != "/v1/counts/":
            assert refused.status_code == 400
            assert "400" in operation["get"]["responses"]
            error = {"$ref": "#/components/schemas/Error", "components": spec["components"]}
            jsonschema.validate(refused.json(), error)
    assert {f"/v1/{p}/" for p in ("counts", "users", "history", "uniques")} == set(spec["paths"])
