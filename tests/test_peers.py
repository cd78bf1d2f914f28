"""Sites moving over from django-online-users and django-djaffar, with the peers' documented
usage: one truth for last seen, ``update_user_activity``, and djaffar's form posts."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from active_users import api, last_seen
from active_users.backends import Presence, get_backend
from active_users.last_seen import catch_up, flush_last_seen, users_seen_within
from active_users.models import Activity, LastSeen, OnlineUserActivity
from active_users.signals import user_became_active
from tests.redis_server import free_port

pytestmark = pytest.mark.usefixtures("backend_name")

LOG = "/tracking/log/"


def browse(user) -> Client:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(user)
    assert browser.get("/page/").status_code == 200
    return browser


def touch(user, age: float) -> None:  # type: ignore[no-untyped-def]
    get_backend().touch(Presence(f'["{user.pk}"]', str(user.pk)), now=time.time() - age)


def close(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and abs((a - b).total_seconds()) < 0.001


# django-online-users


def test_get_user_activities_has_a_user_right_after_their_request(make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    make_user("never")
    touch(bob, 120)
    browse(alice)  # no flush since: the user is only in the live store
    activities = OnlineUserActivity.get_user_activities()
    assert isinstance(activities, QuerySet)
    assert activities.count() == 2
    assert [a.user.username for a in activities] == ["alice", "bob"]  # newest first
    assert [a.user.username for a in activities.filter(user__username="bob")] == ["bob"]
    assert close(activities[0].last_activity, last_seen.last_seen(alice))
    assert [a.user for a in OnlineUserActivity.get_user_activities(timedelta(minutes=1))] == [alice]


def test_users_seen_within_has_a_user_right_after_their_request(make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    touch(bob, 30)
    browse(alice)
    within = users_seen_within(timedelta(minutes=5))
    assert [u.username for u in within] == ["alice", "bob"]
    assert close(within[0].last_seen_at, last_seen.last_seen(alice))


def test_update_user_activity_counts_the_user_as_a_request_would(make_user) -> None:
    worker = make_user("worker")
    became_active = []

    def receiver(sender, user, request, **kwargs) -> None:  # type: ignore[no-untyped-def]
        became_active.append(user.username)

    user_became_active.connect(receiver)
    try:
        OnlineUserActivity.update_user_activity(worker)
        OnlineUserActivity.update_user_activity(worker)  # still active: no second signal
    finally:
        user_became_active.disconnect(receiver)
    assert became_active == ["worker"]
    assert api.get_distinct_active_users_count() == 1
    assert [e["username"] for e in api.get_active_users()] == ["worker"]
    assert last_seen.status(worker) == "online"
    assert [a.user for a in OnlineUserActivity.get_user_activities()] == [worker]


def test_update_user_activity_ignores_an_anonymous_user(db) -> None:
    from django.contrib.auth.models import AnonymousUser

    OnlineUserActivity.update_user_activity(AnonymousUser())
    assert api.get_active_counts().users == 0


# One truth in the admin


def test_the_user_admin_filters_orders_and_shows_users_active_since_the_last_flush(
    make_user,
) -> None:
    fresh, older = make_user("fresh"), make_user("older")
    make_user("never")
    touch(older, 600)
    browse(fresh)
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = admin.get("/admin/auth/user/", {"o": "-6"}).content.decode()  # last seen, newest
    assert page.index(">fresh<") < page.index(">older<")
    row = page[page.index(">fresh<") :].split("</tr>")[0]
    assert "icon-yes.svg" in row  # online, not "-"
    hour = admin.get("/admin/auth/user/", {"last_seen": "hour"}).content.decode()
    assert ">fresh<" in hour and ">older<" in hour and ">never<" not in hour
    never = admin.get("/admin/auth/user/", {"last_seen": "never"}).content.decode()
    assert ">never<" in never and ">fresh<" not in never


def test_catch_up_copies_only_who_was_touched_since_and_once_a_second(make_user) -> None:
    people = [make_user() for _ in range(40)]
    for person in people:
        touch(person, 120)
    flush_last_seen(force=True)
    for person in people[:3]:
        touch(person, 0)
    assert catch_up() == 3  # not 40: the store is read from the last flush on
    touch(people[3], 0)
    with CaptureQueriesContext(connection) as queries:
        assert catch_up() == 0  # another reader did it less than a second ago
    assert not [q for q in queries if "active_users_lastseen" in q["sql"]]
    stored = LastSeen.objects.get(user=people[3]).last_activity
    assert (timezone.now() - stored).total_seconds() > 100
    # ... while the page columns and the template filters read the live value.
    assert last_seen.status(people[3]) == "online"


@override_settings(ACTIVE_USERS_LAST_SEEN=False)
def test_without_last_seen_nothing_is_copied(make_user) -> None:
    touch(make_user(), 0)
    assert catch_up() == 0
    assert not LastSeen.objects.exists()


# django-djaffar's form posts


@pytest.fixture
def reader(make_user) -> Client:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("reader"))
    client.get("/tracked/")
    return client


def post_form(client: Client, data: dict[str, str], **extra: str):  # type: ignore[no-untyped-def]
    return client.post(LOG, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
                       **extra)  # fmt: skip


def post_json(client: Client, body: object):  # type: ignore[no-untyped-def]
    import json

    return client.post(LOG, json.dumps(body), content_type="application/json",
                       HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)  # fmt: skip


@override_settings(TIME_ZONE="America/New_York")
def test_a_form_post_reads_a_naive_date_in_the_current_time_zone_and_answers_204(
    reader, settings
) -> None:
    # The wall-clock time a form in this site's time zone would send (with USE_TZ off,
    # Django's own naive local time).
    local = timezone.localtime() if settings.USE_TZ else timezone.now()
    naive = local.replace(tzinfo=None) - timedelta(minutes=1)
    response = post_form(reader, {"date": naive.isoformat(), "path": "users/me/cart/"})
    assert response.status_code == 204 and response.content == b""
    stored = Activity.objects.get()
    assert stored.date == (timezone.make_aware(naive) if settings.USE_TZ else naive)
    assert stored.path == "users/me/cart/"
    if settings.USE_TZ:
        with timezone.override("Asia/Tokyo"):  # the current time zone, not TIME_ZONE
            naive = timezone.localtime().replace(tzinfo=None)
            assert post_form(reader, {"date": naive.isoformat(), "path": "/"}).status_code == 204
            assert Activity.objects.latest("id").date == timezone.make_aware(naive)


@pytest.mark.parametrize("referer", [None, "", "https://a.example", "not a url"])
def test_a_form_post_without_path_or_usable_referer_is_refused_naming_path(reader, referer) -> None:
    extra = {} if referer is None else {"HTTP_REFERER": referer}
    response = post_form(reader, {"date": timezone.now().isoformat()}, **extra)
    assert response.status_code == 400
    assert response.json()["field"] == "path" and "Referer" in response.json()["error"]
    assert not Activity.objects.exists()


def test_a_form_post_takes_its_path_from_the_referer(reader) -> None:
    response = post_form(reader, {"date": timezone.now().isoformat()},
                         HTTP_REFERER="https://shop.example/cart/?step=2")  # fmt: skip
    assert response.status_code == 204
    assert Activity.objects.get().path == "/cart/?step=2"


def test_json_posts_keep_their_answers(reader) -> None:
    naive = datetime.now().isoformat()
    refused = post_json(reader, {"date": naive, "path": "/x"})
    assert refused.status_code == 400 and "time zone" in refused.json()["error"]
    logged = post_json(reader, {"date": datetime.now(dt_timezone.utc).isoformat()})  # no path
    assert logged.status_code == 201 and logged.json() == {"logged": 1}
    assert Activity.objects.get().path == ""


def test_the_user_model_is_the_projects(db) -> None:
    assert OnlineUserActivity._meta.get_field("user").related_model is get_user_model()


@pytest.mark.django_db(transaction=True)
async def test_async_code_gets_the_queryset_and_can_catch_up_first(make_user) -> None:
    from asgiref.sync import sync_to_async

    from active_users.last_seen import acatch_up

    user = await sync_to_async(make_user)("async-reader")
    await sync_to_async(touch)(user, 0)
    activities = OnlineUserActivity.get_user_activities()  # no database call in the loop
    assert await activities.acount() == 0
    assert await acatch_up() == 1
    assert [a.user_id async for a in OnlineUserActivity.get_user_activities()] == [user.pk]


def test_reads_answer_from_the_rows_when_the_store_refuses_connections(make_user) -> None:
    user = make_user("kept")
    LastSeen.objects.create(user=user, last_activity=timezone.now())
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(
        ACTIVE_USERS_BACKEND="redis", ACTIVE_USERS_REDIS_URL=dead, ACTIVE_USERS_REDIS_CLUSTER=False
    ):
        assert catch_up() == 0
        assert [a.user for a in OnlineUserActivity.get_user_activities()] == [user]
        assert [u.username for u in users_seen_within()] == ["kept"]
        admin = Client()
        admin.force_login(make_user("root", is_staff=True, is_superuser=True))
        page = admin.get("/admin/auth/user/", {"last_seen": "hour"})
        assert page.status_code == 200 and ">kept<" in page.content.decode()
