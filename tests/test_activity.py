"""The activity endpoint ``log/``: what it accepts, what it refuses, and what it stores."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import call_command
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from active_users import api, clock
from active_users.models import Activity, SessionInfo

URL = "/tracking/log/"


def now_iso(**delta: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def browser(make_user) -> Client:  # type: ignore[no-untyped-def]
    """A logged-in browser that enforces CSRF, as a real one is checked."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("reader"))
    client.get("/tracked/")  # sets the CSRF cookie, as the page with the tracker does
    return client


def post_json(client: Client, body: object, **extra: str):  # type: ignore[no-untyped-def]
    token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    return client.post(URL, json.dumps(body), content_type="application/json",
                       HTTP_X_CSRFTOKEN=token, **extra)  # fmt: skip


def test_a_json_pageview_is_stored_with_user_session_and_ip(browser) -> None:
    response = post_json(
        browser, {"date": now_iso(), "path": "/docs/", "referer": "https://a.example/"}
    )
    assert response.status_code == 201 and response.json() == {"logged": 1}
    row = Activity.objects.get()
    assert (row.event, row.path, row.referer, row.user.username) == (
        "pageview",
        "/docs/",
        "https://a.example/",
        "reader",
    )
    assert row.ip == "127.0.0.1"
    assert len(row.session) == 32 and row.session != browser.session.session_key
    assert SessionInfo.objects.filter(session=row.session).exists()


def test_a_form_post_like_djaffar_is_stored_and_the_path_defaults_to_the_referer(browser) -> None:
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        URL, {"date": now_iso(), "csrfmiddlewaretoken": token},
        HTTP_REFERER="http://testserver/users/me/cart/?step=2",
    )  # fmt: skip
    assert response.status_code == 204 and response.content == b""
    assert Activity.objects.get().path == "/users/me/cart/?step=2"


def test_a_list_of_events_is_stored_with_one_insert(browser) -> None:
    events = [{"date": now_iso(seconds=-n), "event": "heartbeat", "path": "/p"} for n in range(5)]
    with CaptureQueriesContext(connection) as queries:
        response = post_json(browser, events)
    assert response.json() == {"logged": 5}
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "active_users_activity"')
               or q["sql"].startswith("INSERT INTO `active_users_activity`")]  # fmt: skip
    assert len(inserts) == 1
    assert Activity.objects.filter(event="heartbeat").count() == 5


def test_logging_marks_the_user_active(browser) -> None:
    api.clear_active_users()
    post_json(browser, {"date": now_iso(), "event": "heartbeat"})
    assert [e["username"] for e in api.get_active_users()] == ["reader"]


@override_settings(ACTIVE_USERS_TRACK_ANONYMOUS=True)
def test_an_anonymous_reader_is_logged_and_counted_as_a_visitor(db) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/tracked/")
    assert post_json(client, {"date": now_iso(), "event": "heartbeat"}).status_code == 201
    assert Activity.objects.get().user is None
    assert api.get_active_visitors_count() == 1


def test_without_the_csrf_token_nothing_is_stored(browser) -> None:
    response = browser.post(URL, json.dumps({"date": now_iso()}), content_type="application/json")
    assert response.status_code == 403
    assert response.json()["field"] == "csrf"
    assert not Activity.objects.exists()


def test_token_authentication_through_django_rest_framework(make_user) -> None:
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=make_user("app-user"))
    client = Client(enforce_csrf_checks=True)
    response = client.post(URL, json.dumps({"date": now_iso()}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {token.key}")  # fmt: skip
    assert response.status_code == 201
    assert Activity.objects.get().user.username == "app-user"
    bad = client.post(URL, json.dumps({"date": now_iso()}), content_type="application/json",
                      HTTP_AUTHORIZATION="Token not-a-token")  # fmt: skip
    assert bad.status_code == 401 and bad.json()["field"] == "authorization"
    assert Activity.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"path": "/x"}, 400, "date", "required"),
        ({"date": "yesterday"}, 400, "date", "not an ISO 8601"),
        ({"date": "2026-13-45T99:00:00Z"}, 400, "date", "not an ISO 8601"),
        ({"date": "2026-11-22T10:00:00"}, 400, "date", "time zone"),
        ({"date": "2001-01-01T00:00:00Z"}, 400, "date", "from the server's clock"),
        ({"date": "2126-01-01T00:00:00+14:00"}, 400, "date", "from the server's clock"),
        ({"date": "2026-02-30T10:00:00Z"}, 400, "date", "not an ISO 8601"),
        ({"date": 12345}, 400, "date", "must be a string"),
        ({"date": "NOW", "path": "/x"}, 400, "date", "not an ISO 8601"),
        ({"date": "@now", "path": "/" + "a" * 2000}, 400, "path", "longer than 2000"),
        ({"date": "@now", "referer": "r" * 2001}, 400, "referer", "longer than 2000"),
        ({"date": "@now", "path": "/a\x00b"}, 400, "path", "control characters"),
        ({"date": "@now", "path": "/\ud800"}, 400, "path", "not valid Unicode"),
        ({"date": "@now", "event": "click"}, 400, "event", "unknown event 'click'"),
        ({"date": "@now", "event": ["pageview"]}, 400, "event", "must be a string"),
        ([], 400, "body", "expected a JSON object"),
        ([1, 2], 400, "body", "expected a JSON object"),
        ([{"date": "@now"}] * 21, 400, "body", "at most 20"),
        ([{"date": "@now"}, {"date": "bad"}], 400, "date", "not an ISO 8601"),
    ],
)
def test_bad_events_get_a_4xx_naming_the_field_and_store_nothing(
    browser, body, status, field, words
) -> None:
    def fill(value: object) -> object:
        if isinstance(value, dict):
            return {k: now_iso() if v == "@now" else v for k, v in value.items()}
        return [fill(v) for v in value] if isinstance(value, list) else value

    response = post_json(browser, fill(body))
    assert response.status_code == status, response.content
    assert response.json()["field"] == field
    assert words in response.json()["error"]
    assert not Activity.objects.exists()


def test_malformed_json_is_refused(browser) -> None:
    token = browser.cookies["csrftoken"].value
    response = browser.post(URL, '{"date": ', content_type="application/json",
                            HTTP_X_CSRFTOKEN=token)  # fmt: skip
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]


def test_a_body_over_the_limit_is_refused_with_413(browser) -> None:
    response = post_json(browser, {"date": now_iso(), "padding": "x" * 20_000})
    assert response.status_code == 413 and response.json()["field"] == "body"
    assert not Activity.objects.exists()


def test_an_over_long_user_agent_is_refused(browser) -> None:
    response = post_json(browser, {"date": now_iso()}, HTTP_USER_AGENT="U" * 600)
    assert response.status_code == 400 and response.json()["field"] == "user agent"


def test_get_is_refused_with_405(browser) -> None:
    response = browser.get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json()["field"] == "method"


@override_settings(ACTIVE_USERS_ACTIVITY_EVENTS=["video-play"])
def test_custom_event_names_come_from_a_setting(browser) -> None:
    assert post_json(browser, {"date": now_iso(), "event": "video-play"}).status_code == 201


@override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="3/m")
def test_too_many_requests_get_429_with_retry_after(browser) -> None:
    from django.core.cache import cache

    cache.clear()
    codes = [post_json(browser, {"date": now_iso()}).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    limited = post_json(browser, {"date": now_iso()})
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert Activity.objects.count() == 3


def test_the_tracker_tag_passes_its_configuration_and_the_csp_nonce(db) -> None:
    request = RequestFactory().get("/")
    request.csp_nonce = "n0nce"
    html = Template("{% load active_users %}{% active_users_tracker %}").render(
        Context({"request": request})
    )
    assert 'src="/static/active_users/tracker.js"' in html
    assert 'data-endpoint="/tracking/log/"' in html and 'data-heartbeat="30"' in html
    assert 'nonce="n0nce"' in html and "data-csrf-token=" in html and "<script" in html
    assert "</script>" in html and html.count("<script") == 1


def make_events(count: int, start: datetime) -> None:
    Activity.objects.bulk_create(
        Activity(date=start + timedelta(minutes=n), event="pageview", path=f'/p/{n},"q"')
        for n in range(count)
    )


def test_export_streams_a_date_range_as_csv_and_json_lines(db, tmp_path, capsys) -> None:
    start = clock.from_client(datetime(2026, 1, 1))  # midnight in the site's time zone
    make_events(12_000, start)  # more than one batch
    out = tmp_path / "a.csv"
    call_command("active_users_export_activity", "--since", "2026-01-01T00:10:00",
                 "--until", "2026-01-09", "--output", str(out))  # fmt: skip
    lines = out.read_text().splitlines()
    assert lines[0] == "id,date,event,user_id,session,ip,path,referer"
    assert len(lines) == 1 + 11_510  # minutes 10 … 11,519 (8 days = 11,520 minutes)
    assert '"/p/10,""q"""' in lines[1]
    until = clock.iso(start + timedelta(minutes=3))  # an aware value, in UTC
    call_command("active_users_export_activity", "--since", "2026-01-01", "--until", until,
                 "--format", "jsonl")  # fmt: skip
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == ['/p/0,"q"', '/p/1,"q"', '/p/2,"q"']


def test_prune_deletes_activity_older_than_the_retention(db, capsys) -> None:
    make_events(5, clock.ago(timedelta(days=100)))
    make_events(3, clock.ago(timedelta(days=1)))
    call_command("active_users_prune_activity")
    assert "Deleted 5 activity rows older than 90 days." in capsys.readouterr().out
    assert Activity.objects.count() == 3


def test_dumpdata_exports_the_activity_model(db, capsys) -> None:
    make_events(2, clock.from_client(datetime(2026, 1, 1)))
    call_command("dumpdata", "active_users.Activity")
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_the_activity_admin_is_read_only_filterable_and_searchable(browser, make_user) -> None:
    post_json(browser, {"date": now_iso(), "path": "/searched/"})
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    found = admin.get("/admin/active_users/activity/", {"q": "searched", "event": "pageview"})
    assert found.status_code == 200 and "/searched/" in found.content.decode()
    assert admin.get("/admin/active_users/activity/add/").status_code == 403
