"""Last seen, online status, the signal, logout and deleted users, on both backends."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from active_users import api, clock, last_seen
from active_users.backends import Presence, get_backend
from active_users.last_seen import flush_last_seen, users_seen_within
from active_users.models import LastSeen, OnlineUserActivity
from active_users.signals import user_became_active
from active_users.tracking import tracker

pytestmark = pytest.mark.usefixtures("backend_name")


def browse(user, path: str = "/page/") -> Client:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(user)
    assert browser.get(path).status_code == 200
    return browser


def lastseen_writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if "active_users_lastseen" in q["sql"]
            and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]  # fmt: skip


def test_a_request_makes_the_user_last_seen_now_and_online(make_user) -> None:
    user = make_user()
    before = time.time()
    browse(user)
    seen = last_seen.last_seen(user)
    assert seen is not None and before - 1 <= clock.to_timestamp(seen) <= time.time()
    assert timezone.is_aware(seen) == settings.USE_TZ  # the form Django's own values take
    assert last_seen.is_online(user) and last_seen.status(user) == "online"


def test_a_user_never_seen_is_offline_with_no_last_seen(make_user) -> None:
    user = make_user()
    assert last_seen.last_seen(user) is None
    assert last_seen.status(user) == "offline"


@override_settings(ACTIVE_USERS_ONLINE_AFTER=60, ACTIVE_USERS_IDLE_AFTER=600)
def test_status_follows_the_online_and_idle_thresholds(make_user) -> None:
    user = make_user()
    now = time.time()
    for age, expected in [(10, "online"), (120, "idle"), (3600, "offline")]:
        get_backend().touch(Presence(f'["{user.pk}"]', str(user.pk)), now=now - age)
        LastSeen.objects.all().delete()
        get_backend().remove_user(str(user.pk))
        get_backend().touch(Presence(f'["{user.pk}"]', str(user.pk)), now=now - age)
        assert last_seen.status(user) == expected


@override_settings(ACTIVE_USERS_TOUCH_INTERVAL=0)
def test_a_thousand_requests_write_last_seen_once_per_interval(make_user) -> None:
    user = make_user()
    browser = Client()
    browser.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(1000):
            browser.get("/page/")
        flush_last_seen()  # the interval ends: one batch
        flush_last_seen()  # within the same interval: claimed already, nothing written
    print(f"last-seen writes for 1,000 requests: {len(lastseen_writes(queries))}")
    assert len(lastseen_writes(queries)) == 1
    assert LastSeen.objects.get(user=user).last_activity == last_seen.last_seen(user)


def test_last_seen_many_answers_for_many_users_with_a_fixed_number_of_queries(
    make_user, backend_name
) -> None:
    users = [make_user() for _ in range(30)]
    for user in users[:20]:
        browse(user)
    flush_last_seen(force=True)
    expected = 2 if backend_name == "database" else 1  # LastSeen (+ live rows on the database)
    with CaptureQueriesContext(connection) as queries:
        seen = last_seen.last_seen_many(users)
    assert len(queries) == expected
    assert all(seen[str(u.pk)] is not None for u in users[:20])
    assert all(seen[str(u.pk)] is None for u in users[20:])


def test_the_signal_fires_once_per_return_from_offline(make_user) -> None:
    fired: list[str] = []

    def receiver(sender, user, request, **kwargs):  # type: ignore[no-untyped-def]
        fired.append(user.get_username())

    user_became_active.connect(receiver)
    try:
        user = make_user("returning")
        browser = browse(user)
        for _ in range(5):
            tracker.forget()
            browser.get("/page/")
        assert fired == ["returning"]
        # Offline: last seen longer ago than IDLE_AFTER (900 s by default).
        get_backend().remove_user(str(user.pk))
        get_backend().touch(Presence(f'["{user.pk}"]', str(user.pk)), now=time.time() - 1000)
        tracker.forget()
        browser.get("/page/")
        assert fired == ["returning", "returning"]
    finally:
        user_became_active.disconnect(receiver)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_touches_see_one_transition(backend_name) -> None:
    if backend_name == "database" and connection.vendor == "sqlite":
        pytest.skip("in-memory SQLite fails concurrent writers at once; run on PostgreSQL/MariaDB")
    user = get_user_model().objects.create_user("racer")
    user_became_active.connect(noop := lambda **kw: None)  # detection is on with a receiver
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def touch(n: int) -> None:
        barrier.wait()
        try:
            results.append(get_backend().touch(Presence(f'["{user.pk}","s{n}"]', str(user.pk))))
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=touch, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        user_became_active.disconnect(noop)
    assert results.count(True) == 1
    assert api.get_distinct_active_users_count() == 1


def test_logging_out_leaves_the_active_list_at_once(make_user) -> None:
    browser = browse(make_user("leaver"))
    browse(make_user("stayer"))
    assert api.get_active_users_count() == 2
    browser.post("/logout/")
    assert [e["username"] for e in api.get_active_users()] == ["stayer"]


def test_a_deleted_user_leaves_nothing_behind(make_user) -> None:
    user = make_user("gone")
    browse(user)
    browse(user)
    flush_last_seen(force=True)
    pk = user.pk
    user.delete()
    assert api.get_active_users() == []
    assert get_backend().seen([str(pk)]) == {}
    assert not LastSeen.objects.filter(user_id=pk).exists()
    flush_last_seen(force=True)  # a pending time of a deleted user is not written back
    assert not LastSeen.objects.filter(user_id=pk).exists()


def test_online_user_activity_answers_like_django_online_users(make_user) -> None:
    recent, older, never = make_user("recent"), make_user("older"), make_user("never")
    now = time.time()
    get_backend().touch(Presence('["o"]', str(older.pk)), now=now - 600)
    get_backend().touch(Presence('["r"]', str(recent.pk)), now=now - 5)
    flush_last_seen(force=True)
    activities = OnlineUserActivity.get_user_activities()
    assert [a.user.username for a in activities] == ["recent", "older"]
    assert activities[0].last_activity > activities[1].last_activity
    assert OnlineUserActivity.get_user_activities(timedelta(minutes=5)).count() == 1
    assert never.pk not in {a.user_id for a in activities}


def test_users_seen_within_is_a_queryset_newest_first(make_user) -> None:
    a, b, c = make_user("a"), make_user("b"), make_user("c", is_staff=True)
    now = time.time()
    for user, age in [(a, 30), (b, 10), (c, 20)]:
        get_backend().touch(Presence(f'["{user.pk}"]', str(user.pk)), now=now - age)
    flush_last_seen(force=True)
    within = users_seen_within(timedelta(minutes=1))
    assert [u.username for u in within] == ["b", "c", "a"]
    assert [u.username for u in within.filter(is_staff=False)] == ["b", "a"]
    assert within.first().last_seen_at is not None


def test_commands_flush_and_prune(make_user, capsys) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    old, new = make_user(), make_user()
    LastSeen.objects.create(user=old, last_activity=clock.ago(timedelta(days=40)))
    browse(new)
    call_command("active_users_flush_last_seen")
    assert "Wrote the last-seen time of 1 users." in capsys.readouterr().out
    call_command("active_users_prune_last_seen", "--days", "30")
    assert "Deleted 1 last-seen rows older than 30 days." in capsys.readouterr().out
    assert list(LastSeen.objects.values_list("user_id", flat=True)) == [new.pk]
