"""The write path: first touches at once, refreshes through the write-behind buffer, visitors
without cookies, and logging out that finds every entry of the session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from active_users import api, clock
from active_users.backends import Presence, get_backend
from active_users.backends.buffer import buffer
from active_users.conf import conf
from active_users.signals import user_became_active
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
# Every request past the first is a refresh (no throttle), written by the next flush.
REFRESH_EVERY_REQUEST = {"ACTIVE_USERS_TOUCH_INTERVAL": 0, "ACTIVE_USERS_KEY_EXPIRE": 60}


def stored_time(user) -> float | None:  # type: ignore[no-untyped-def]
    """The user's last touch as the store has it, read without flushing this process."""
    return get_backend().seen([str(user.pk)]).get(str(user.pk))


@pytest.fixture
def signalled():  # type: ignore[no-untyped-def]
    """``user_became_active`` as it is sent: (username, request path, whether the store
    already had the user when the receivers ran), in order."""
    sent: list[tuple[str, str, bool]] = []

    def receiver(sender, user, request, **kwargs):  # type: ignore[no-untyped-def]
        sent.append((user.username, request.path, stored_time(user) is not None))

    user_became_active.connect(receiver)
    yield sent
    user_became_active.disconnect(receiver)


@pytest.mark.usefixtures("backend_name")
@override_settings(**REFRESH_EVERY_REQUEST)
def test_a_first_touch_is_written_at_once_and_a_refresh_waits_for_the_flush(
    client, make_user
) -> None:
    user = make_user()
    client.force_login(user)
    before = time.time()
    client.get("/page/")
    first = stored_time(user)
    assert first is not None and first >= before  # written by the request itself
    assert get_backend().count() == 1
    time.sleep(0.01)
    client.get("/page/")
    assert len(buffer) == 1
    assert stored_time(user) == first  # not written by the request
    assert buffer.flush()
    assert stored_time(user) > first  # type: ignore[operator]
    assert len(buffer) == 0


@pytest.mark.usefixtures("backend_name")
def test_became_active_is_sent_by_the_first_touch_with_its_request(
    client, make_user, signalled
) -> None:
    client.force_login(make_user("back"))
    client.get("/page/")
    client.get("/page/")
    assert signalled == [("back", "/page/", True)]


def step_back(user, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """As if this process and the store had last seen ``user`` ``seconds`` ago."""
    from active_users.tracking import tracker

    known = tracker._known
    for key, (at, *presence) in known.items():
        known[key] = (at - seconds, *presence)
    then = time.time() - seconds
    get_backend().remove_user(str(user.pk))  # Redis keeps the newest time of a touch
    get_backend().touch_many([(Presence(*presence), then) for _, *presence in known.values()])
    assert stored_time(user) == pytest.approx(then, abs=0.01)


@pytest.mark.usefixtures("backend_name")
@override_settings(ACTIVE_USERS_KEY_EXPIRE=20, ACTIVE_USERS_IDLE_AFTER=900)
def test_a_user_this_process_saw_before_idle_after_waits_for_the_flush_even_if_expired(
    client, make_user, signalled
) -> None:
    # Across a fleet a process sees a user only every few requests: a gap longer than
    # KEY_EXPIRE is no reason to make the request wait, and no signal is owed.
    user = make_user("fleet")
    client.force_login(user)
    client.get("/first/")
    step_back(user, 60)  # the entry lapsed 40 s ago
    assert get_backend().count() == 0
    client.get("/again/")
    assert len(buffer) == 1
    assert stored_time(user) == pytest.approx(time.time() - 60, abs=1)  # not written yet
    assert buffer.flush()
    assert stored_time(user) == pytest.approx(time.time(), abs=1)
    assert get_backend().count() == 1
    assert signalled == [("fleet", "/first/", True)]


@pytest.mark.usefixtures("backend_name")
@override_settings(ACTIVE_USERS_KEY_EXPIRE=20, ACTIVE_USERS_IDLE_AFTER=60)
def test_a_user_back_after_idle_after_is_written_at_once_and_signalled(
    client, make_user, signalled
) -> None:
    user = make_user("returner")
    client.force_login(user)
    client.get("/first/")
    step_back(user, 120)
    client.get("/back/")
    assert len(buffer) == 0
    assert stored_time(user) == pytest.approx(time.time(), abs=1)  # by the request
    assert signalled == [("returner", "/first/", True), ("returner", "/back/", True)]


@pytest.mark.usefixtures("backend_name")
@override_settings(**REFRESH_EVERY_REQUEST)
def test_a_read_in_the_same_process_sees_the_buffered_refresh(client, make_user) -> None:
    user = make_user()
    client.force_login(user)
    client.get("/page/")
    time.sleep(0.01)
    client.get("/page/")
    latest = time.time()
    [entry] = api.get_active_users_page().users
    assert abs(clock.to_timestamp(entry["last_active"]) - latest) < 0.05
    assert len(buffer) == 0


def lazy_user_request(user, loads: list[str], path: str = "/page/"):  # type: ignore[no-untyped-def]
    """A request whose ``request.user`` is Django's lazy proxy, not read by the view yet."""
    from django.test import RequestFactory
    from django.utils.functional import SimpleLazyObject

    def load():  # type: ignore[no-untyped-def]
        loads.append(user.username)
        return user

    request = RequestFactory().get(path)
    request.user = SimpleLazyObject(load)
    return request


@pytest.mark.usefixtures("backend_name")
@override_settings(**REFRESH_EVERY_REQUEST)
def test_a_user_the_view_never_read_is_loaded_once_and_counted(make_user) -> None:
    from active_users.tracking import tracker

    loads: list[str] = []
    request = lazy_user_request(make_user("unread"), loads)
    tracker.track(request)  # a first touch: loads the user through the proxy
    assert loads == ["unread"]
    assert api.get_active_users_count() == 1
    tracker.track(lazy_user_request(make_user("read"), loads))
    tracker.track(request)  # a refresh of the first
    assert loads == ["unread", "read"]
    assert len(buffer) == 1
    assert api.get_active_users_count() == 2


@pytest.mark.parametrize("backend_name", ["redis"], indirect=True)
async def test_an_async_request_whose_user_was_never_read_is_counted(
    backend_name, transactional_db
) -> None:
    from django.contrib.auth import get_user_model

    from active_users.tracking import tracker

    user = await get_user_model().objects.acreate(username=f"async-{uuid.uuid4().hex}")
    loads: list[str] = []
    await tracker.atrack(lazy_user_request(user, loads, "/async-page/"))
    assert loads == [user.username]
    assert await api.aget_active_users_count() == 1
    await get_backend().aclose()  # type: ignore[attr-defined]


@pytest.mark.usefixtures("backend_name")
@override_settings(ACTIVE_USERS_KEY_EXPIRE=60, ACTIVE_USERS_TOUCH_INTERVAL=10)
def test_a_flush_leaves_a_person_another_process_wrote_less_than_half_an_interval_before(
    backend_name,
) -> None:
    # Each process of a fleet refreshes a person once per refresh interval: on the
    # database, a flush skips the rows another process moved less than half an interval
    # before, so the fleet writes them about twice per interval, not once per process.
    assert conf.refresh_step == 5
    now = time.time()
    lately, earlier = Presence('["7"]', "7"), Presence('["8"]', "8")
    get_backend().touch_many([(lately, now - 4), (earlier, now - 6)])  # another process
    buffer.add(lately, now)
    buffer.add(earlier, now)
    assert buffer.flush()
    seen = get_backend().seen(["7", "8"])
    assert seen["7"] == pytest.approx(now - 4 if backend_name == "database" else now, abs=1e-3)
    assert seen["8"] == pytest.approx(now, abs=1e-3)


@pytest.mark.parametrize(
    ("settings", "step"),
    [
        ({}, 2.5),  # KEY_EXPIRE 20, TOUCH_INTERVAL 5: half the interval
        # (20 - 14 - 1) / 2: never lapses
        ({"ACTIVE_USERS_TOUCH_INTERVAL": 14, "ACTIVE_USERS_FLUSH_INTERVAL": 1}, 2.5),
        ({"ACTIVE_USERS_TOUCH_INTERVAL": 14, "ACTIVE_USERS_FLUSH_INTERVAL": 0.25}, 2.875),
        ({"ACTIVE_USERS_TOUCH_INTERVAL": 19, "ACTIVE_USERS_FLUSH_INTERVAL": 1}, 0.0),  # no room
        ({"ACTIVE_USERS_TOUCH_INTERVAL": 0}, 0.0),  # every request refreshes
        ({"ACTIVE_USERS_KEY_EXPIRE": 3600, "ACTIVE_USERS_LAST_SEEN_INTERVAL": 60}, 30.0),
    ],
)
def test_the_step_keeps_a_person_refreshed_all_along_counted(settings, step) -> None:
    with override_settings(**settings):
        assert conf.refresh_step == step
        # Stored at most a refresh interval, the step and a flush interval behind.
        behind = conf.refresh_interval + conf.refresh_step + conf.FLUSH_INTERVAL
        assert behind <= conf.KEY_EXPIRE


def test_the_buffer_is_written_every_quarter_second_and_every_second_on_sqlite() -> None:
    from django.db import connection

    with override_settings(ACTIVE_USERS_BACKEND="database"):
        assert conf.FLUSH_INTERVAL == (1.0 if connection.vendor == "sqlite" else 0.25)
    with override_settings(ACTIVE_USERS_BACKEND="redis"):
        assert conf.FLUSH_INTERVAL == 0.25
    with override_settings(ACTIVE_USERS_BACKEND="database", ACTIVE_USERS_FLUSH_INTERVAL=3):
        assert conf.FLUSH_INTERVAL == 3


@pytest.mark.parametrize("backend_name", ["redis", "redis-cluster"], indirect=True)
@override_settings(**REFRESH_EVERY_REQUEST)
async def test_an_async_read_flushes_the_buffer_too(
    async_client, backend_name, transactional_db
) -> None:
    # (On the database backend the async path runs the same code in a thread.) The async
    # ORM writes from another thread, outside a test transaction: the tables are emptied
    # after the test instead, or its user would meet later tests.
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    user = await get_user_model().objects.acreate(username=f"async-{uuid.uuid4().hex}")
    await sync_to_async(async_client.force_login)(user)
    await async_client.get("/async-page/")
    await async_client.get("/async-page/")
    assert len(buffer) == 1
    assert await api.aget_active_users_count() == 1
    assert len(buffer) == 0
    await get_backend().aclose()  # type: ignore[attr-defined]


@pytest.mark.writer_thread
@pytest.mark.parametrize("backend_name", ["redis", "redis-cluster"], indirect=True)
@override_settings(ACTIVE_USERS_FLUSH_INTERVAL=0.2, **REFRESH_EVERY_REQUEST)
def test_the_writer_thread_writes_buffered_refreshes_within_a_flush_interval(
    backend_name, make_user
) -> None:
    browsers = []
    for n in range(20):
        browser = Client()
        browser.force_login(make_user(f"u{n}"))
        browser.get("/page/")
        browsers.append(browser)
    first = get_backend().page(100).items
    time.sleep(0.01)
    refreshed_at = time.time()
    for browser in browsers:
        browser.get("/page/")
    requests_took = time.time() - refreshed_at
    deadline = time.monotonic() + 0.5  # the interval, and as long again for the write
    while any(t < refreshed_at for _, t in get_backend().page(100).items):
        assert time.monotonic() < deadline, "the refreshes were not written in time"
        time.sleep(0.02)
    print(f"20 refreshes ({requests_took:.3f} s of requests) written "
          f"{time.time() - refreshed_at:.3f} s after the first")  # fmt: skip
    assert len(get_backend().page(100).items) == len(first) == 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.writer_thread
@override_settings(
    ACTIVE_USERS_BACKEND="database", ACTIVE_USERS_FLUSH_INTERVAL=0.2, **REFRESH_EVERY_REQUEST
)
def test_the_writer_thread_writes_to_the_database_within_a_flush_interval(
    make_user, vendor
) -> None:
    if vendor == "sqlite":
        pytest.skip("a thread's connection to in-memory SQLite would race this test's")
    user = make_user()
    browser = Client()
    browser.force_login(user)
    browser.get("/page/")
    first = stored_time(user)
    time.sleep(0.01)
    browser.get("/page/")
    deadline = time.monotonic() + 0.5
    while stored_time(user) == first:
        assert time.monotonic() < deadline, "the refresh was not written in time"
        time.sleep(0.02)


@override_settings(
    ACTIVE_USERS_FAILURE_COOLDOWN=0.2, ACTIVE_USERS_BUFFER_SIZE=5, ACTIVE_USERS_TOUCH_INTERVAL=0
)
def test_the_buffer_holds_touches_through_an_outage_bounded_and_drains_after(
    make_user, caplog
) -> None:
    server = RedisServer()
    try:
        with override_settings(ACTIVE_USERS_BACKEND="redis", ACTIVE_USERS_REDIS_URL=server.url):
            browsers = []
            for n in range(8):
                browser = Client()
                browser.force_login(make_user(f"u{n}"))
                browsers.append(browser)
            browsers[0].get("/page/")
            server.stop()
            for browser in browsers:
                assert browser.get("/page/").status_code == 200
            # The first five (the first browser's refresh, four first touches); the others
            # are refused: the buffer is bounded.
            assert len(buffer) == 5
            assert any("buffer is full" in r.getMessage() for r in caplog.records)
            assert not buffer.flush()  # still down: kept
            assert len(buffer) == 5
            server.start()
            time.sleep(0.25)  # past the cool-down
            assert buffer.flush()
            assert api.get_active_users_count() == 5  # the restarted Redis kept nothing else
            for browser in browsers:  # the refused ones are tried again on their next request
                browser.get("/page/")
            assert api.get_active_users_count() == 8
    finally:
        server.close()


def sent_to_postgresql(call) -> list[str]:  # type: ignore[no-untyped-def]
    """The queries ``call()`` sends on the default connection, as libpq traces them."""
    from django.db import connection
    from psycopg.pq import Trace

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            call()
        finally:
            pgconn.untrace()
        trace.seek(0)
        return [line.split("\t", 3)[3] for line in trace if line.startswith("F\t")]


def synchronous_commit() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
@override_settings(ACTIVE_USERS_BACKEND="database")
def test_a_flush_on_postgresql_is_one_round_trip_that_does_not_wait_for_the_disk(
    vendor,
) -> None:
    # Each round trip is a wait of the writer thread and a handover of the GIL to and from
    # the request being served: one statement, its own transaction, committed without
    # waiting for the WAL (set for that transaction only).
    if vendor != "postgresql":
        pytest.skip("PostgreSQL's round trips")
    now = time.time()
    people = [Presence(f'["{n}"]', str(n)) for n in range(50)]
    get_backend().touch_many([(person, now - 10) for person in people])
    for person in people:
        buffer.add(person, now)
    sent = sent_to_postgresql(buffer.flush)
    assert len(sent) == 1, sent
    assert "'synchronous_commit', 'off', true" in sent[0]
    assert get_backend().seen(["0", "49"]) == pytest.approx({"0": now, "49": now}, abs=1e-3)
    assert synchronous_commit() == "on"
    # A first touch is one transaction: the setting rides on its upsert too.
    sent = sent_to_postgresql(lambda: get_backend().touch(Presence("visitor")))
    assert [query.split()[0] for query in sent] == ['"BEGIN"', '"INSERT', '"INSERT', '"COMMIT"']
    assert "'synchronous_commit', 'off', true" in sent[1]
    assert synchronous_commit() == "on"


def run_by_sqlite(call) -> list[str]:  # type: ignore[no-untyped-def]
    """The statements SQLite runs for ``call()`` on the default connection."""
    from django.db import connection

    connection.ensure_connection()
    ran: list[str] = []
    connection.connection.set_trace_callback(ran.append)
    try:
        call()
    finally:
        connection.connection.set_trace_callback(None)
    return ran


@pytest.mark.django_db(transaction=True)
@override_settings(ACTIVE_USERS_BACKEND="database")
def test_a_flush_on_sqlite_is_one_statement_however_many_it_holds(vendor) -> None:
    # Each statement is a call into SQLite that hands the GIL to the request being served
    # and waits to take it back. 300 presences are 600 rows: four statements of Django's
    # 999 parameters, between BEGIN and COMMIT; they go as one, its own transaction.
    if vendor != "sqlite":
        pytest.skip("SQLite's statements")
    now = time.time()
    people = [Presence(f'["{n}"]', str(n), f"s{n}") for n in range(300)]
    get_backend().touch_many([(person, now - 10) for person in people])
    for person in people:
        buffer.add(person, now)
    get_backend().touch_many([(people[0], now + 5)])  # written later meanwhile: it stays
    ran = run_by_sqlite(buffer.flush)
    assert len(ran) == 1 and ran[0].startswith('INSERT INTO "active_users_activeentry"'), ran
    seen = get_backend().seen(["0", "1", "299"])
    assert seen == pytest.approx({"0": now + 5, "1": now, "299": now}, abs=1e-3)
    assert api.get_active_users_count() == 300


@pytest.mark.django_db
@override_settings(ACTIVE_USERS_BACKEND="database", **REFRESH_EVERY_REQUEST)
def test_writes_inside_the_hosts_transaction_leave_its_commit_as_it_was(vendor, make_user) -> None:
    # A flush from a read in a view under ATOMIC_REQUESTS, or a user recorded from one, runs
    # inside the host's transaction: the host's commit stays durable.
    if vendor != "postgresql":
        pytest.skip("PostgreSQL's synchronous_commit")
    from django.db import transaction

    from active_users.tracking import record_user

    with transaction.atomic():
        user = make_user()
        record_user(user)  # a first touch
        buffer.add(Presence('["7"]', "7"), time.time())
        assert buffer.flush()
        assert synchronous_commit() == "on"
    assert stored_time(user) is not None and get_backend().seen(["7"])


@pytest.mark.usefixtures("backend_name")
@override_settings(ACTIVE_USERS_TRACK_ANONYMOUS=True)
def test_a_cookieless_client_is_one_visitor_with_no_session_and_no_cookie(db) -> None:
    probe = Client(HTTP_USER_AGENT="UptimeProbe/1.0")
    sessions_before = Session.objects.count()
    for _ in range(50):
        response = probe.get("/page/")
        assert "Set-Cookie" not in str(response.cookies.output())
        assert not response.cookies
        probe.cookies.clear()  # keeps no cookie
    assert Session.objects.count() == sessions_before
    assert api.get_active_visitors_count() == 1


@pytest.mark.usefixtures("backend_name")
@override_settings(ACTIVE_USERS_TRACK_ANONYMOUS=True)
def test_three_addresses_and_browsers_are_three_visitors(db) -> None:
    for ip, agent in [("10.0.0.1", "A"), ("10.0.0.2", "A"), ("10.0.0.1", "B"), ("10.0.0.1", "A")]:
        Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent).get("/page/")
    assert api.get_active_visitors_count() == 3


@override_settings(ACTIVE_USERS_TRACK_ANONYMOUS=True, ACTIVE_USERS_ANONYMIZE_IP=True)
@pytest.mark.usefixtures("backend_name")
def test_anonymized_addresses_are_truncated_before_hashing(db) -> None:
    Client(REMOTE_ADDR="10.0.0.1", HTTP_USER_AGENT="A").get("/page/")
    Client(REMOTE_ADDR="10.0.0.2", HTTP_USER_AGENT="A").get("/page/")  # same /24
    assert api.get_active_visitors_count() == 1


@pytest.mark.usefixtures("backend_name")
def test_logging_out_after_an_address_change_leaves_no_entry(make_user) -> None:
    make_user("mover")
    browser = Client(REMOTE_ADDR="10.0.0.1")
    browser.post("/login/", {"username": "mover", "password": "pw"})
    browser.get("/page/")
    browser.get("/page/", REMOTE_ADDR="10.0.0.2")  # a new network: a second entry
    assert api.get_active_users_count() == 2
    browser.post("/logout/", REMOTE_ADDR="10.0.0.3")
    assert api.get_active_users_count() == 0


@pytest.mark.usefixtures("backend_name")
@override_settings(ACTIVE_USERS_KEY_CLASS="tests.test_middleware.ServiceEntry")
def test_logging_out_finds_entries_whose_fields_come_from_headers(make_user) -> None:
    make_user("service")
    browser = Client()
    browser.post("/login/", {"username": "service", "password": "pw"})  # no service: one
    browser.get("/page/", HTTP_SERVICE_ID="billing")  # two
    browser.get("/page/", HTTP_SERVICE_ID="search")  # three
    assert api.get_active_users_count() == 3
    browser.post("/logout/")  # no Service-Id header
    assert api.get_active_users_count() == 0


@pytest.mark.usefixtures("backend_name")
@override_settings(**REFRESH_EVERY_REQUEST)
def test_the_test_clients_logout_removes_the_entry_and_what_is_buffered(make_user) -> None:
    browser = Client()
    browser.force_login(make_user())
    browser.get("/page/")
    browser.get("/page/")  # a refresh waits in the buffer
    assert len(buffer) == 1
    browser.logout()  # its request has no REMOTE_ADDR
    assert len(buffer) == 0
    assert api.get_active_users_count() == 0


@pytest.mark.usefixtures("backend_name")
def test_another_session_of_the_user_stays_when_one_logs_out(make_user) -> None:
    user = make_user()
    laptop, phone = Client(), Client()
    for browser in (laptop, phone):
        browser.force_login(user)
        browser.get("/page/")
    laptop.logout()
    assert api.get_active_users_count() == 1


def test_a_forked_child_starts_with_an_empty_buffer(redis_settings, make_user) -> None:
    buffer.add(Presence('["1","","",""]', "1"), time.time())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            held = len(buffer)
            buffer.add(Presence('["2","","",""]', "2"), time.time())
            flushed = buffer.flush()
            os.write(write, f"{held},{len(buffer)},{flushed}".encode())
        finally:
            os._exit(0)
    os.close(write)
    report = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert report == "0,0,True"
    assert len(buffer) == 1  # the parent's own stays with the parent
    buffer.flush()
    assert sorted(get_backend().members()) == ['["1","","",""]', '["2","","",""]']


EXIT_SCRIPT = """
import os, time, django
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
django.setup()
from django.conf import settings
settings.ACTIVE_USERS_BACKEND = "redis"
settings.ACTIVE_USERS_REDIS_URL = os.environ["EXIT_REDIS_URL"]
settings.ACTIVE_USERS_KEY_PREFIX = os.environ["EXIT_PREFIX"]
settings.ACTIVE_USERS_FLUSH_INTERVAL = 3600  # only the exit flushes
from active_users.backends import Presence
from active_users.backends.buffer import buffer
buffer.add(Presence('["7","","",""]', "7"), float(os.environ["EXIT_AT"]))
"""


def test_the_buffer_is_written_when_the_process_exits(redis_settings) -> None:
    at = time.time()
    env = {**os.environ, "EXIT_REDIS_URL": redis_settings["ACTIVE_USERS_REDIS_URL"],
           "EXIT_PREFIX": redis_settings["ACTIVE_USERS_KEY_PREFIX"], "EXIT_AT": repr(at),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert get_backend().seen(["7"]) == {"7": pytest.approx(at)}


def test_what_a_process_remembers_of_its_users_is_not_walked_by_the_garbage_collector(
    make_user,
) -> None:
    # A full collection pauses every request of the process in flight for as long as it
    # walks the heap: a thousand remembered users must not lengthen it.
    import gc

    from active_users.tracking import tracker

    for name in ("one", "two", "three"):
        browser = Client()
        browser.force_login(make_user(name))
        browser.get("/page/")
    gc.collect()
    gc.collect()  # a tuple is untracked once what it holds is
    assert len(tracker._known) == 3
    assert not any(gc.is_tracked(k) or gc.is_tracked(v) for k, v in tracker._known.items())


DATABASE_SITE_SCRIPT = """
import sys, django
from django.conf import settings
settings.configure(
    SECRET_KEY="x", ALLOWED_HOSTS=["*"], ROOT_URLCONF="__main__",
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "active_users"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "active_users.middleware.ActiveUsersSessionMiddleware"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ACTIVE_USERS_BACKEND="database",
)
django.setup()
from django.core.management import call_command
from django.http import HttpResponse
from django.urls import path
urlpatterns = [path("page/", lambda request: HttpResponse("ok"))]
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from django.test import Client
from active_users import api
from active_users.backends.buffer import buffer
client = Client()
client.force_login(User.objects.create(username="someone"))
client.get("/page/")
client.get("/page/")
buffer.flush()
print(api.get_active_users_count(), sorted(m for m in sys.modules if m.split(".")[0] == "redis"))
"""


def test_a_site_on_the_database_backend_never_loads_redis_py() -> None:
    # redis-py is a hundred modules, ~13,000 objects that every full garbage collection of
    # the host's processes would walk (a fifth more than a bare Django process holds).
    done = subprocess.run([sys.executable, "-c", DATABASE_SITE_SCRIPT], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "[]"]
