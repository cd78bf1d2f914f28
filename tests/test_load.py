"""gunicorn with several workers under a bounded load of K users and V anonymous visitors."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.redis_server import delete_keys_under, free_port, key_prefix

ROOT = Path(__file__).resolve().parent.parent
USERS, VISITORS, SECONDS, THREADS = 40, 15, 4.0, 8


@pytest.fixture
def load_database(tmp_path):  # type: ignore[no-untyped-def]
    """A database of its own: a SQLite file, or a new database on DATABASE_URL's server."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path}/load.sqlite3", "redis"
        return
    name = f"active_users_load_{uuid.uuid4().hex[:8]}"
    if url.startswith("postgres"):
        import psycopg

        admin = psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True)
        admin.execute(f"CREATE DATABASE {name}")
        yield url.rsplit("/", 1)[0] + "/" + name, "database"
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()
    else:
        import pymysql

        admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        yield url.rsplit("/", 1)[0] + "/" + name, "database"
        admin.cursor().execute(f"DROP DATABASE {name}")
        admin.close()


def run(env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "tests.load_site.manage", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_counts_are_exact_after_a_load_on_several_gunicorn_workers(
    redis_url, load_database
) -> None:
    database_url, backend = load_database
    prefix = key_prefix("load")
    env = {**os.environ, "LOAD_DATABASE_URL": database_url, "LOAD_BACKEND": backend,
           "LOAD_REDIS_URL": redis_url, "LOAD_PREFIX": prefix, "PYTHONPATH": str(ROOT)}  # fmt: skip
    env.pop("DJANGO_SETTINGS_MODULE", None)
    cookies = run(env, "setup", str(USERS), str(VISITORS))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tests.load_site.wsgi:application", "-w", "3",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                probe.connect()
                probe.close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        sessions = [{"Cookie": f"sessionid={key}"} for key in cookies["users"]]  # type: ignore[attr-defined]
        sessions += [{"User-Agent": agent} for agent in cookies["visitors"]]  # type: ignore[attr-defined]
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        stop = time.monotonic() + SECONDS

        def browse(mine: list[dict[str, str]]) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            n = 0
            # Every session three times at least (so that each meets several workers), then
            # on until the time is up, however slow the machine.
            while time.monotonic() < stop or n < 3 * len(mine):
                connection.request("GET", "/page/", headers=mine[n % len(mine)])
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses[response.status] += 1
                n += 1
            connection.close()

        threads = [threading.Thread(target=browse, args=(sessions[i::THREADS],))
                   for i in range(THREADS)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(20)
    counts = run(env, "counts")
    delete_keys_under(redis_url, prefix)
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) >= 3 * (USERS + VISITORS)
    assert counts == {"entries": USERS, "users": USERS, "visitors": VISITORS}
