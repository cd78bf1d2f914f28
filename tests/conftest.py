from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import redis
from asgiref.sync import SyncToAsync
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import override_settings

from active_users import history, last_seen
from active_users.backends import get_backend
from active_users.backends.buffer import buffer
from active_users.backends.health import breaker
from active_users.tracking import tracker
from tests.redis_server import (
    RUN_PREFIX,
    RedisCluster,
    RedisServer,
    delete_keys_under,
    in_ci,
    key_prefix,
    keys_under,
    reachable,
)


def removed_in_django_warnings() -> list[type[Warning]]:
    """The installed Django's warnings about what its next versions remove
    (``RemovedInDjango60Warning``, ``RemovedInDjango61Warning``, ``RemovedInDjango70Warning``…)."""
    from django.utils import deprecation

    return [
        getattr(deprecation, name)
        for name in sorted(vars(deprecation))
        if re.fullmatch(r"RemovedInDjango\d+Warning", name)
    ]


def pytest_configure(config: pytest.Config) -> None:
    # "error" covers them already; named after the ini's own filters, they stay errors even
    # if a broader one (say ignore::DeprecationWarning) is added there.
    for warning in removed_in_django_warnings():
        config.addinivalue_line(
            "filterwarnings", f"error::{warning.__module__}.{warning.__qualname__}"
        )


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``REDIS_URL`` if set, else the Redis on 127.0.0.1:6379, else a throwaway redis-server."""
    url = os.environ.get("REDIS_URL")
    if url:
        if not reachable(url):
            pytest.fail(f"REDIS_URL={url} does not answer")
        yield url
        _assert_nothing_left_in(url)
        return
    if reachable("redis://127.0.0.1:6379/0"):
        yield "redis://127.0.0.1:6379/0"
        _assert_nothing_left_in("redis://127.0.0.1:6379/0")
        return
    server = RedisServer()
    yield server.url
    _assert_nothing_left_in(server.url)
    server.close()


def _assert_nothing_left_in(url: str) -> None:
    """After the last test: no key of this run is left (a test that leaves some fails here)."""
    left = keys_under(url, f"{{{RUN_PREFIX}-*")
    if left:
        with redis.Redis.from_url(url) as client:
            client.delete(*left)
        names = sorted(key.decode() for key in left)
        pytest.fail(f"the tests left {len(left)} keys in {url}, now deleted: {names[:10]}")


@pytest.fixture(autouse=True)
def _no_background_sampler(request: pytest.FixtureRequest, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Requests start no history-sampler thread (it would write to the database beside the
    test's transaction) unless the test is marked ``background_sampler``; tests sample with
    ``history.record_minute()`` themselves."""
    if request.node.get_closest_marker("background_sampler") is None:
        monkeypatch.setattr(history.Sampler, "maybe_sample", lambda self: None)


@pytest.fixture(autouse=True)
def _fresh_tracker(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fresh write path per test. The write-behind buffer's thread stays off (it would
    write beside the test's transaction) unless the test is marked ``writer_thread``: reads
    flush the buffer in the test's own thread, and tests call ``buffer.flush()``."""
    tracker.forget()
    breaker.reset()
    buffer.cleared()
    buffer.background = request.node.get_closest_marker("writer_thread") is not None
    yield
    buffer.shutdown()
    buffer.background = True
    buffer.cleared()
    tracker.forget()


def _redis_backend(url: str, cluster: bool = False, shards: int = 1) -> Iterator[dict[str, object]]:
    """Settings for the Redis backend under a key prefix of this test's own."""
    values = {
        "ACTIVE_USERS_BACKEND": "redis",
        "ACTIVE_USERS_REDIS_URL": url,
        "ACTIVE_USERS_REDIS_CLUSTER": cluster,
        "ACTIVE_USERS_REDIS_SHARDS": shards,
        "ACTIVE_USERS_KEY_PREFIX": key_prefix(),
    }
    with override_settings(**values):
        yield values
        backend = get_backend()
        backend.clear()
        backend.clear_history()
    if not cluster:  # the Cluster is the run's own, and gone at its end
        # Neither clear clears the sampler's minute claims or presence rooms.
        delete_keys_under(url, str(values["ACTIVE_USERS_KEY_PREFIX"]))


@pytest.fixture
def redis_settings(redis_url: str) -> Iterator[dict[str, object]]:
    yield from _redis_backend(redis_url)


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A Redis Cluster of three masters, started for the test session."""
    cluster = RedisCluster()
    yield cluster.url
    cluster.close()


@pytest.fixture
def redis_cluster_settings(redis_cluster_url: str) -> Iterator[dict[str, object]]:
    yield from _redis_backend(redis_cluster_url, cluster=True)


@pytest.fixture
def redis_sharded_settings(redis_cluster_url: str) -> Iterator[dict[str, object]]:
    """The Redis backend on the Cluster with its live sets in 16 shards."""
    yield from _redis_backend(redis_cluster_url, cluster=True, shards=16)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of the ``database`` backend declares the database to pytest-django, which
    creates only the test databases that the collected tests declare (a test run alone
    would otherwise meet an empty in-memory SQLite database). A marker of the test's own,
    ``transaction=True`` included, is kept."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("backend_name") != "database":
            continue
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db)


@pytest.fixture(params=["database", "redis", "redis-cluster", "redis-sharded"])
def backend_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test once per backend, with that backend configured (``redis-sharded``: on
    the Cluster, ``REDIS_SHARDS = 16``)."""
    if request.param == "redis-sharded":
        request.getfixturevalue("redis_sharded_settings")
    elif request.param == "redis-cluster":
        request.getfixturevalue("redis_cluster_settings")
    elif request.param == "redis":
        request.getfixturevalue("redis_settings")
    else:
        request.getfixturevalue("db")
        stack = override_settings(ACTIVE_USERS_BACKEND="database")
        stack.enable()
        request.addfinalizer(stack.disable)
    yield request.param


@pytest.fixture
def make_user(db: None):  # type: ignore[no-untyped-def]
    counter = iter(range(1_000_000))

    def make(username: str | None = None, **fields: object):  # type: ignore[no-untyped-def]
        name = username if username is not None else f"user{next(counter)}"
        return get_user_model().objects.create_user(username=name, password="pw", **fields)

    return make


@pytest.fixture
def vendor() -> str:
    return connection.vendor


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def chromium():  # type: ignore[no-untyped-def]
    """Headless Debian Chromium driven by Selenium; skipped off CI when it is not installed."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "Debian's chromium and chromium-driver are not installed"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Extends pytest-django's: before the test databases are dropped, the connections of
    every thread that may hold one are closed. Async tests reach the database through
    asgiref's thread-sensitive executor, whose thread outlives them; outside a request
    nothing closes its connection (a server does it at each request's end), and
    PostgreSQL refuses to drop a database that a session still uses."""
    yield
    buffer.shutdown()
    for job in (last_seen.flusher, history.sampler):
        if job.thread is not None:
            job.thread.join(10)
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(10)
    with django_db_blocker.unblock():
        left = other_sessions(connections["default"])
    assert not left, f"sessions left open on the test database, last queries: {left}"


def other_sessions(database) -> list[str]:  # type: ignore[no-untyped-def]
    """The last queries of the other sessions on PostgreSQL's test database."""
    if database.vendor != "postgresql":
        return []
    with database.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [query for (query,) in cursor.fetchall()]
