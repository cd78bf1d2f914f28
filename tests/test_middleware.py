"""What the middleware records, on both backends, sync and async."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext, override_settings

from active_users import api
from active_users.backends import get_backend
from active_users.keys import ActiveUserEntry

pytestmark = pytest.mark.usefixtures("backend_name")


def test_a_logged_in_request_is_counted_at_once(client, make_user) -> None:
    user = make_user("alice")
    client.force_login(user)
    assert client.get("/page/").status_code == 200
    assert api.get_active_users_count() == 1
    [data] = api.get_active_users()
    assert data["user_id"] == str(user.pk)
    assert data["username"] == "alice"
    assert data["ip"] == "127.0.0.1"


def test_anonymous_requests_are_not_counted_by_default(client, db) -> None:
    client.get("/page/")
    counts = api.get_active_counts()
    assert (counts.entries, counts.visitors) == (0, 0)


@override_settings(ACTIVE_USERS_TRACK_ANONYMOUS=True)
def test_anonymous_visitors_are_counted_by_address_and_browser_apart_from_users(
    client, make_user
) -> None:
    from django.test import Client

    client.get("/page/")
    client.get("/page/")  # same visitor
    Client(HTTP_USER_AGENT="Another browser").get("/page/")  # another visitor
    logged_in = Client()
    logged_in.force_login(make_user())
    logged_in.get("/page/")
    counts = api.get_active_counts()
    assert (counts.entries, counts.users, counts.visitors) == (1, 1, 2)


@override_settings(ACTIVE_USERS_TRACK_ANONYMOUS=True)
def test_a_visitor_who_logs_in_is_counted_as_a_user_only(client, make_user) -> None:
    client.get("/page/")
    assert api.get_active_visitors_count() == 1
    make_user("newcomer")
    response = client.post("/login/", {"username": "newcomer", "password": "pw", "next": "/page/"})
    assert response.status_code == 302
    client.get("/page/")
    counts = api.get_active_counts()
    assert (counts.entries, counts.users, counts.visitors) == (1, 1, 0)


@override_settings(ACTIVE_USERS_TRACK_ANONYMOUS=True)
def test_crawlers_are_not_counted_as_visitors(client, db) -> None:
    client.get("/page/", HTTP_USER_AGENT="Mozilla/5.0 (compatible; Googlebot/2.1)")
    assert api.get_active_visitors_count() == 0


def test_two_browsers_of_one_user_are_two_entries_and_one_distinct_user(make_user) -> None:
    from django.test import Client

    user = make_user()
    for _ in range(2):
        browser = Client()
        browser.force_login(user)
        browser.get("/page/")
    assert api.get_active_users_count() == 2
    assert api.get_distinct_active_users_count() == 1


@override_settings(ACTIVE_USERS_EXCLUDE_URL_PATTERNS=[r"^/excluded/", r"\.ico$"])
def test_excluded_url_patterns_are_not_counted(client, make_user) -> None:
    client.force_login(make_user())
    client.get("/excluded/health/")
    assert api.get_active_users_count() == 0
    client.get("/page/")
    assert api.get_active_users_count() == 1


@pytest.mark.parametrize(
    ("rule", "fields"),
    [
        ("staff", {"is_staff": True}),
        ("superusers", {"is_superuser": True}),
        ("tests.test_middleware.is_robot_account", {"first_name": "robot"}),
    ],
)
def test_excluded_users_are_not_counted(client, make_user, rule, fields) -> None:
    with override_settings(ACTIVE_USERS_EXCLUDE_USERS=[rule]):
        client.force_login(make_user(**fields))
        client.get("/page/")
        assert api.get_active_users_count() == 0
        client.force_login(make_user())
        client.get("/page/")
        assert api.get_active_users_count() == 1


def is_robot_account(user) -> bool:  # type: ignore[no-untyped-def]
    return user.first_name == "robot"


def test_a_user_authenticated_by_the_view_itself_is_counted(client, make_user) -> None:
    make_user("api-client")
    client.get("/token-page/", HTTP_AUTHORIZATION="Token api-client")
    [data] = api.get_active_users()
    assert data["username"] == "api-client"


def test_ipv6_clients_are_recorded(client, make_user) -> None:
    client.force_login(make_user())
    client.get("/page/", REMOTE_ADDR="2001:0db8:0000:0000:0000:0000:0000:0001")
    assert api.get_active_users()[0]["ip"] == "2001:db8::1"


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(client, make_user) -> None:
    client.force_login(make_user())
    client.get("/page/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert api.get_active_users()[0]["ip"] == "203.0.113.9"


@override_settings(ACTIVE_USERS_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_x_forwarded_for_is_used_behind_a_trusted_proxy(client, make_user) -> None:
    client.force_login(make_user())
    client.get(
        "/page/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7, 10.0.0.3"
    )
    assert api.get_active_users()[0]["ip"] == "198.51.100.7"


def test_usernames_with_any_characters_round_trip_exactly(client, make_user) -> None:
    name = "a:b:c sp\u00e4ce \u6771\u4eac\nline\t\"q\" \\ '\U0001f600'"
    client.force_login(make_user(name))
    client.get("/page/")
    [data] = api.get_active_users()
    assert data["username"] == name


def test_the_raw_session_key_is_never_stored_or_returned(admin_client, make_user) -> None:
    admin_client.get("/page/")
    session_key = admin_client.session.session_key
    body = admin_client.get("/active-users/active-users-info/").content.decode()
    [data] = json.loads(body)["data"]
    assert data["session_id"] and data["session_id"] != session_key
    assert session_key not in body
    assert all(session_key not in member for member in get_backend().members())
    admin_client.get("/page/")
    assert api.get_active_users()[0]["session_id"] == data["session_id"]  # stable


class ServiceEntry(ActiveUserEntry):
    """The custom-entry example of django-active-users' README."""

    fields = ("service_id", *ActiveUserEntry.fields)

    @classmethod
    def create_from_request(cls, request):  # type: ignore[no-untyped-def]
        instance = super().create_from_request(request)
        instance.service_id = request.META.get("HTTP_SERVICE_ID", "")
        return instance


@override_settings(ACTIVE_USERS_KEY_CLASS="tests.test_middleware.ServiceEntry")
def test_a_custom_key_class_adds_its_fields(client, make_user) -> None:
    client.force_login(make_user("bob"))
    client.get("/page/", HTTP_SERVICE_ID="billing:eu")
    [data] = api.get_active_users()
    assert data["service_id"] == "billing:eu"
    assert data["username"] == "bob"
    assert list(data) == ["service_id", "user_id", "session_id", "ip", "username"]


@pytest.mark.slow
@override_settings(ACTIVE_USERS_KEY_EXPIRE=1)
def test_a_user_drops_out_of_the_count_after_key_expire(client, make_user) -> None:
    client.force_login(make_user())
    client.get("/page/")
    assert api.get_active_users_count() == 1
    time.sleep(1.1)
    assert api.get_active_users_count() == 0


def test_a_repeated_request_within_the_touch_interval_skips_the_store(
    client, make_user, backend_name
) -> None:
    client.force_login(make_user())
    client.get("/page/")
    if backend_name == "database":
        with CaptureQueriesContext(connection) as queries:
            client.get("/page/")
        assert not [q for q in queries if "active_users_activeentry" in q["sql"]]
    else:
        backend = get_backend()
        [member] = backend.members()
        score = backend.client.zscore(backend.entries_key, member)  # type: ignore[attr-defined]
        client.get("/page/")
        assert backend.client.zscore(backend.entries_key, member) == score  # not rewritten
    assert api.get_active_users_count() == 1


@pytest.mark.django_db(transaction=True)
async def test_the_async_middleware_records_requests(async_client, backend_name) -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    user = await get_user_model().objects.acreate(username="async-alice")
    await async_client.aforce_login(user) if hasattr(async_client, "aforce_login") else (
        await sync_to_async(async_client.force_login)(user)
    )
    response = await async_client.get("/async-page/")
    assert response.status_code == 200
    assert await api.aget_active_users_count() == 1
    [data] = await api.aget_active_users()
    assert data["username"] == "async-alice"
    page = await api.aget_active_users_page(limit=10)
    assert page.users[0]["username"] == "async-alice"
    backend = get_backend()
    if hasattr(backend, "aclose"):
        await backend.aclose()
    await sync_to_async(connections.close_all)()
