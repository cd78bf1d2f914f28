"""A store that is down, refuses or stalls never breaks the site."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.test import Client, override_settings

from active_users import api, last_seen
from active_users.exceptions import StoreUnavailable
from active_users.last_seen import flush_last_seen
from active_users.models import LastSeen
from active_users.tracking import tracker
from tests.redis_server import RedisServer, free_port, reachable


@pytest.fixture
def own_redis():  # type: ignore[no-untyped-def]
    server = RedisServer()
    with override_settings(
        ACTIVE_USERS_BACKEND="redis",
        ACTIVE_USERS_REDIS_URL=server.url,
        ACTIVE_USERS_FAILURE_COOLDOWN=0.5,
    ):
        yield server
    server.close()


def warnings_of(caplog) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "active_users" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("cluster", [False, True], ids=["redis", "redis-cluster"])
def test_requests_are_served_when_redis_refuses_connections(make_user, caplog, cluster) -> None:
    # A Cluster client connects when it is made: the backend makes it on first use, so
    # that a site whose Cluster is down at start-up still starts and serves.
    with override_settings(
        ACTIVE_USERS_BACKEND="redis",
        ACTIVE_USERS_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        ACTIVE_USERS_REDIS_CLUSTER=cluster,
    ):
        times = []
        for _ in range(3):
            browser = Client()
            browser.force_login(make_user())
            began = time.monotonic()
            assert browser.get("/page/").status_code == 200
            times.append(time.monotonic() - began)
        print("refused Redis, request times ms:", [round(t * 1000, 1) for t in times])
        failures = [m for m in warnings_of(caplog) if "failed" in m]
        assert len(failures) == 1  # one warning per outage, not per request
        with pytest.raises(StoreUnavailable):
            api.get_active_users_count()
        staff = Client()
        staff.force_login(make_user(is_staff=True))
        response = staff.get("/active-users/active-users-info/")
        assert response.status_code == 503
        assert "not answering" in response.json()["error"]


@pytest.mark.slow
def test_a_paused_redis_does_not_stall_requests_and_tracking_resumes(
    own_redis, make_user, caplog
) -> None:
    browser = Client()
    browser.force_login(make_user("patient"))
    own_redis.command("CLIENT", "PAUSE", "3000", "ALL")
    started = time.monotonic()
    times = []
    for _ in range(5):
        tracker.forget()  # each request would write
        began = time.monotonic()
        assert browser.get("/page/").status_code == 200
        times.append(time.monotonic() - began)
    stalled = time.monotonic() - started
    print("paused Redis, request times ms:", [round(t * 1000, 1) for t in times])
    assert stalled < 2.0, f"5 requests took {stalled:.2f}s against a paused Redis"
    time.sleep(3.2)  # pause over, cool-down over
    browser.get("/page/")
    assert [d["username"] for d in api.get_active_users()] == ["patient"]
    assert any("answers again" in m for m in warnings_of(caplog))


@pytest.mark.slow
def test_a_redis_down_at_start_up_is_waited_for(make_user, caplog) -> None:
    server = RedisServer()
    server.stop()  # down before the site starts
    try:
        with override_settings(
            ACTIVE_USERS_BACKEND="redis",
            ACTIVE_USERS_REDIS_URL=server.url,
            ACTIVE_USERS_FAILURE_COOLDOWN=0.5,
        ):
            browser = Client()
            browser.force_login(make_user("early"))
            assert browser.get("/page/").status_code == 200
            server.start()
            time.sleep(0.6)
            assert browser.get("/page/").status_code == 200
            assert [d["username"] for d in api.get_active_users()] == ["early"]
            assert len([m for m in warnings_of(caplog) if "failed" in m]) == 1
    finally:
        server.close()


@pytest.mark.slow
def test_tracking_resumes_after_redis_restarts(own_redis, make_user) -> None:
    browser = Client()
    browser.force_login(make_user("comeback"))
    own_redis.stop()
    assert browser.get("/page/").status_code == 200
    own_redis.start()
    time.sleep(0.6)  # past the cool-down
    assert browser.get("/page/").status_code == 200
    assert api.get_active_users_count() == 1


@pytest.mark.slow
def test_last_seen_survives_a_redis_flushdb(make_user) -> None:
    server = RedisServer()
    try:
        with override_settings(ACTIVE_USERS_BACKEND="redis", ACTIVE_USERS_REDIS_URL=server.url):
            user = make_user("durable")
            browser = Client()
            browser.force_login(user)
            browser.get("/page/")
            flush_last_seen()
            flushed = LastSeen.objects.get(user=user).last_activity
            time.sleep(0.05)
            tracker.forget()
            browser.get("/page/")
            assert last_seen.last_seen(user) > flushed  # fresher, from Redis
            server.command("FLUSHDB")
            assert last_seen.last_seen(user) == flushed  # lost at most one interval
    finally:
        server.close()


def make_certificates(folder: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
            "-out", "server.crt")  # fmt: skip


@pytest.mark.slow
def test_tracking_over_tls_with_a_rediss_url(make_user, tmp_path) -> None:
    if not (shutil.which("openssl") and shutil.which("redis-server")):
        pytest.skip("needs openssl and a TLS-capable redis-server (Debian's redis-server)")
    make_certificates(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key",
         "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={tmp_path}/ca.crt"
    try:
        deadline = time.monotonic() + 10
        while not reachable(url):
            if server.poll() is not None:
                pytest.skip("this redis-server was built without TLS")
            assert time.monotonic() < deadline, "redis-server with TLS did not start"
            time.sleep(0.1)
        with override_settings(ACTIVE_USERS_BACKEND="redis", ACTIVE_USERS_REDIS_URL=url):
            browser = Client()
            browser.force_login(make_user("secure"))
            assert browser.get("/page/").status_code == 200
            assert [d["username"] for d in api.get_active_users()] == ["secure"]
    finally:
        server.terminate()
        server.wait(10)


def test_a_deadlock_victim_is_retried_and_other_errors_are_not() -> None:
    from django.db import OperationalError

    from active_users.backends.database import _retrying

    calls: list[int] = []

    def chosen_as_victim_twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return "written"

    assert _retrying(chosen_as_victim_twice) == "written" and len(calls) == 3

    def gone() -> None:
        calls.append(1)
        raise OperationalError(2006, "MySQL server has gone away")

    calls.clear()
    with pytest.raises(OperationalError, match="gone away"):
        _retrying(gone)
    assert len(calls) == 1
