"""One benchmark subject in one process; started by ``benchmarks/run.py`` in the right venv.

Subjects: ``bare`` (Django alone), ``ours`` (this package), ``dau`` (django-active-users
0.4.1), ``dou`` (django-online-users 0.1). Stores: ``redis``, ``sqlite``, ``postgres``.
Prints one JSON object of figures. Also a WSGI module for gunicorn (``application``).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from typing import Any

from django.urls import path

SUBJECT = os.environ["BENCH_SUBJECT"]
STORE = os.environ.get("BENCH_STORE", "sqlite")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE = os.environ.get("BENCH_DATABASE", "/tmp/active-users-bench.sqlite3")
# Sessions in signed cookies (per-request figures) or in the database (served runs).
SESSIONS = os.environ.get("BENCH_SESSIONS", "signed_cookies")

MIDDLEWARE = {
    "bare": None,
    "ours": "active_users.middleware.ActiveUsersSessionMiddleware",
    "dau": "active_users.middleware.ActiveUsersSessionMiddleware",
    "dou": "worker.OnlineNowShim",
    "tables": None,  # this package installed and migrated, its middleware not in the stack
}


def shim_online_users() -> None:
    """django-online-users 0.1 predates Django 2.0: its model's OneToOneField has no
    ``on_delete`` and its middleware calls ``is_authenticated()``. Give the field Django
    1.x's default (CASCADE); :class:`OnlineNowShim` runs its middleware's one statement."""
    from django.db import models

    original = models.OneToOneField.__init__

    def init(self: Any, to: Any, on_delete: Any = models.CASCADE, *args: Any, **kw: Any) -> None:
        original(self, to, on_delete, *args, **kw)

    models.OneToOneField.__init__ = init  # type: ignore[method-assign]


class OnlineNowShim:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from online_users.models import OnlineUserActivity

        if request.user.is_authenticated:  # OnlineNowMiddleware.process_request
            OnlineUserActivity.update_user_activity(request.user)
        return self.get_response(request)


class Timed:
    """Wraps the subject's middleware and adds up the time spent in it, not in the view and
    the middleware below it: the middleware's own cost, free of the baseline's noise."""

    samples: list[float] = []
    below = 0.0

    def __init__(self, get_response: Any) -> None:
        from django.utils.module_loading import import_string

        def inner(request: Any) -> Any:
            began = time.perf_counter()
            response = get_response(request)
            Timed.below = time.perf_counter() - began
            return response

        self.middleware = import_string(os.environ["BENCH_MIDDLEWARE"])(inner)

    def __call__(self, request: Any) -> Any:
        began = time.perf_counter()
        response = self.middleware(request)
        Timed.samples.append(time.perf_counter() - began - Timed.below)
        return response


def configure() -> None:
    import django
    from django.conf import settings

    if STORE == "postgres":
        database = {"ENGINE": "django.db.backends.postgresql", "NAME": DATABASE,
                    "USER": "postgres", "HOST": "127.0.0.1", "CONN_MAX_AGE": None}  # fmt: skip
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": DATABASE,
                    "CONN_MAX_AGE": None, "OPTIONS": {"timeout": 30}}  # fmt: skip
    if os.environ.get("BENCH_ASGI"):  # Django's advice: no persistent connections under ASGI
        database["CONN_MAX_AGE"] = 0
    apps = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions"]
    extra: dict[str, Any] = {}
    if SUBJECT in ("ours", "tables"):
        apps.append("active_users")
        extra = {"ACTIVE_USERS_BACKEND": "redis" if STORE == "redis" else "database",
                 "ACTIVE_USERS_REDIS_URL": REDIS_URL}  # fmt: skip
        if os.environ.get("BENCH_TOUCH_INTERVAL"):
            extra["ACTIVE_USERS_TOUCH_INTERVAL"] = float(os.environ["BENCH_TOUCH_INTERVAL"])
        extra.update(json.loads(os.environ.get("BENCH_SETTINGS", "{}")))  # settings to try
    elif SUBJECT == "dou":
        shim_online_users()
        apps.append("online_users")
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    if SUBJECT == "dau":
        caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}}
    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    if MIDDLEWARE[SUBJECT]:
        os.environ["BENCH_MIDDLEWARE"] = MIDDLEWARE[SUBJECT]  # type: ignore[assignment]
        timed = os.environ.get("BENCH_TASK") == "request"
        middleware.append("worker.Timed" if timed else MIDDLEWARE[SUBJECT])  # type: ignore[arg-type]
    settings.configure(
        SECRET_KEY="bench", DEBUG=False, USE_TZ=True, ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=apps, MIDDLEWARE=middleware, ROOT_URLCONF="worker",
        DATABASES={"default": database}, CACHES=caches,
        SESSION_ENGINE=f"django.contrib.sessions.backends.{SESSIONS}",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGGING_CONFIG=None, **extra,
    )  # fmt: skip
    django.setup()


def page(request: Any) -> Any:
    """A view that uses ``request.user``, as most do: the user lookup is part of the
    baseline, not of the middleware's overhead. It names the user: the load generator notes
    which users it got an answer for."""
    from django.http import HttpResponse

    return HttpResponse(request.user.get_username() if request.user.is_authenticated else "ok")


urlpatterns = [path("", page)]


def session_cookies(count: int) -> list[str]:
    """Sessions of ``count`` users (created if missing), in the configured session engine."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )

    SessionStore = import_module(settings.SESSION_ENGINE).SessionStore

    User = get_user_model()
    have = User.objects.filter(username__startswith="bench").count()
    User.objects.bulk_create(User(username=f"bench{n}", password="x") for n in range(have, count))
    cookies = []
    for user in User.objects.filter(username__startswith="bench").order_by("id")[:count]:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        cookies.append(session.session_key)
    return cookies


def redis_commands() -> int:
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        return int(client.info("stats")["total_commands_processed"])


def per_request(users: int, rounds: int) -> dict[str, Any]:
    """Median time of a request through the WSGI handler, with this subject's middleware and
    without any (alternating blocks), plus SQL queries and Redis commands per request."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.client import RequestFactory
    from django.test.utils import CaptureQueriesContext, override_settings

    cookies = session_cookies(users)
    base = RequestFactory()._base_environ(PATH_INFO="/", REQUEST_METHOD="GET")
    environs = [{**base, "HTTP_COOKIE": f"sessionid={c}"} for c in cookies]
    handler = WSGIHandler()
    with override_settings(MIDDLEWARE=settings.MIDDLEWARE[:2]):
        bare = WSGIHandler()

    # First touches: the process forgets what it wrote before each request, so each one
    # is written at once (refreshes go to the write-behind buffer instead).
    forget = None
    if SUBJECT == "ours" and os.environ.get("BENCH_FIRST_TOUCH"):
        from active_users.tracking import tracker

        forget = tracker.forget

    def run(target: WSGIHandler, count: int, start: int = 0) -> list[float]:
        times = []
        for n in range(start, start + count):
            if forget is not None and target is handler:
                forget()
            environ = dict(environs[n % len(environs)], **{"wsgi.input": io.BytesIO()})
            began = time.perf_counter()
            response = target(environ, lambda *a: None)
            response.close()
            times.append(time.perf_counter() - began)
        return times

    from worker import Timed as timed  # the instance Django imported

    run(handler, users)  # every entry written once: the steady state begins
    run(bare, users)
    ours_times: list[float] = []
    bare_times: list[float] = []
    timed.samples.clear()
    for block in range(rounds):
        ours_times += run(handler, 1000, block * 1000)
        bare_times += run(bare, 1000, block * 1000)
    own = statistics.median(timed.samples)
    sample = 200
    before = redis_commands() if STORE == "redis" or SUBJECT == "dau" else 0
    with CaptureQueriesContext(connection) as queries:
        run(handler, sample)
    after = redis_commands() if STORE == "redis" or SUBJECT == "dau" else 0
    with CaptureQueriesContext(connection) as bare_queries:
        run(bare, sample)
    return {
        "request_us": statistics.median(ours_times) * 1e6,
        "bare_us": statistics.median(bare_times) * 1e6,
        "overhead_us": (statistics.median(ours_times) - statistics.median(bare_times)) * 1e6,
        "middleware_us": own * 1e6,
        "sql_per_request": (len(queries) - len(bare_queries)) / sample,
        "redis_per_request": max(0, after - before - 1) / sample,
    }


def timed(call: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def member(n: int) -> str:
    return json.dumps([str(n), f"{n:032x}", "203.0.113.45", f"user{n}"], separators=(",", ":"))


def sizes_redis(sizes: list[int]) -> list[dict[str, Any]]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    rows = []
    for size in sizes:
        client.flushdb()
        used = client.info("memory")["used_memory"]
        now = time.time()
        for first in range(0, size, 10_000):
            pipe = client.pipeline(transaction=False)
            chunk = range(first, min(size, first + 10_000))
            if SUBJECT == "ours":
                from active_users.backends import get_backend

                backend = get_backend()
                pipe.zadd(backend.entries_key, {member(n): now - n * 1e-4 for n in chunk})
                pipe.zadd(backend.users_key, {str(n): now - n * 1e-4 for n in chunk})
            else:  # django-active-users: one SETEX per entry, key "au:<fields>"
                for n in chunk:
                    pipe.setex(f"au:{n}:{n:032x}:203.0.113.45:user{n}", 3600, 0)
            pipe.execute()
        per_entry = (client.info("memory")["used_memory"] - used) / size
        repeat = 3 if (SUBJECT == "dau" and size >= 1_000_000) else 20
        if SUBJECT == "ours":
            from active_users import api

            count = timed(api.get_active_users_count, repeat)
            listing = timed(lambda: api.get_active_users_page(limit=100), repeat)
        else:
            from active_users import api as peer_api

            count = timed(peer_api.get_active_users_count, repeat)
            listing = timed(peer_api.get_active_users, max(1, repeat // 4))  # no paging
        rows.append({"size": size, "count_ms": count, "page_ms": listing,
                     "bytes_per_entry": round(per_entry, 1)})  # fmt: skip
    client.flushdb()
    client.close()
    return rows


def sizes_database(sizes: list[int]) -> list[dict[str, Any]]:
    from datetime import datetime, timedelta, timezone

    from django.db import connection

    rows = []
    now = datetime.now(timezone.utc)
    for size in sizes:
        if SUBJECT == "ours":
            from active_users.backends import get_backend
            from active_users.models import ActiveEntry, Kind

            model: Any = ActiveEntry
            ActiveEntry.objects.all().delete()
            for first in range(0, size, 5000):
                ActiveEntry.objects.bulk_create(
                    ActiveEntry(key=f"{kind}{n:039x}", kind=kind, user_key=str(n),
                                data=member(n) if kind == Kind.ENTRY else str(n),
                                touched=now - timedelta(microseconds=n))
                    for n in range(first, min(size, first + 5000))
                    for kind in (Kind.ENTRY, Kind.USER)
                )  # fmt: skip
            count_call = get_backend().count

            def page_call() -> Any:
                return get_backend().page(100)
        else:
            from django.contrib.auth import get_user_model
            from online_users.models import OnlineUserActivity

            model = OnlineUserActivity
            session_cookies(size)  # the users the rows point to
            OnlineUserActivity.objects.all().delete()
            users = get_user_model().objects.order_by("id").values_list("id", flat=True)[:size]
            OnlineUserActivity.objects.bulk_create(
                (OnlineUserActivity(user_id=uid, last_activity=now - timedelta(microseconds=n))
                 for n, uid in enumerate(users)), batch_size=5000,
            )  # fmt: skip

            def count_call() -> int:
                return OnlineUserActivity.get_user_activities().count()

            def page_call() -> list[Any]:
                return list(OnlineUserActivity.get_user_activities()[:100])

        table = model._meta.db_table
        per_row = None
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM ANALYZE {table}")
                cursor.execute("SELECT pg_total_relation_size(%s)", [table])
                per_row = round(cursor.fetchone()[0] / size, 1)
            else:
                cursor.execute("ANALYZE")
        rows.append({"size": size, "count_ms": timed(count_call, 20),
                     "page_ms": timed(page_call, 20), "bytes_per_row": per_row})  # fmt: skip
    return rows


def write_amplification(requests: int = 1000) -> dict[str, Any]:
    """Rows written by ``requests`` requests of one user (the database stores)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test.client import RequestFactory
    from django.test.utils import CaptureQueriesContext

    cookie = session_cookies(1)[0]
    base = RequestFactory()._base_environ(PATH_INFO="/", REQUEST_METHOD="GET")
    handler = WSGIHandler()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(requests):
            handler(dict(base, HTTP_COOKIE=f"sessionid={cookie}", **{"wsgi.input": io.BytesIO()}),
                    lambda *a: None).close()  # fmt: skip
        if SUBJECT == "ours":
            from active_users.last_seen import flush_last_seen

            flush_last_seen(force=True)  # the interval's last-seen batch
    writes = [q for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    return {"requests": requests, "write_statements": len(writes)}


if os.environ.get("BENCH_WSGI"):
    from django.conf import settings as _settings

    sys.path.insert(0, os.path.dirname(__file__))
    if not _settings.configured:  # this module is imported a second time as "worker"
        configure()
    if os.environ.get("BENCH_ASGI"):
        from django.core.asgi import get_asgi_application

        application = get_asgi_application()
    else:
        from django.core.wsgi import get_wsgi_application

        application = get_wsgi_application()


def main() -> None:
    from django.conf import settings

    if not settings.configured:
        configure()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    journal = os.environ.get("BENCH_SQLITE_JOURNAL")
    if journal and STORE != "postgres":  # kept in the database file
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA journal_mode={journal}")
    task = os.environ["BENCH_TASK"]
    if task == "migrate":
        result: Any = "migrated"
    elif task == "request":
        result = per_request(int(os.environ.get("BENCH_USERS", 2000)),
                                  int(os.environ.get("BENCH_ROUNDS", 5)))  # fmt: skip
    elif task == "sizes":
        sizes = [int(s) for s in os.environ["BENCH_SIZES"].split(",") if s]
        result = sizes_redis(sizes) if STORE == "redis" else sizes_database(sizes)
    elif task == "writes":
        result = write_amplification()
    elif task == "cookies":
        result = session_cookies(int(os.environ["BENCH_USERS"]))
    elif task == "count":
        from active_users import api

        # The distinct count, and the users (by number) of the active entries.
        names = {entry.get("username", "") for entry in api.get_active_users()}
        numbers = sorted(int(n.removeprefix("bench")) for n in names if n.startswith("bench"))
        result = [api.get_distinct_active_users_count(), numbers]
    print(json.dumps(result))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
