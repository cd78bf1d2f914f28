"""Peak memory of ``active_users_export_activity`` over N activity rows (SQLite file).

    .venv/bin/python benchmarks/export_memory.py --rows 100000,1000000

Each export runs in its own process; the figures are that process's peak RSS and the peak
of Python allocations (tracemalloc) during the export.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup(path: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench", USE_TZ=True,
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "active_users"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": path}},
    )  # fmt: skip
    django.setup()


def fill(rows: int) -> None:
    from django.core.management import call_command

    from active_users.models import Activity

    call_command("migrate", verbosity=0)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for first in range(0, rows, 20_000):
        Activity.objects.bulk_create(
            Activity(date=start + timedelta(seconds=n), event="heartbeat", ip="203.0.113.7",
                     session=f"{n:032x}", path=f"/articles/{n % 5000}/?page=2",
                     referer="https://example.com/")
            for n in range(first, min(rows, first + 20_000))
        )  # fmt: skip


def export(out: str) -> None:
    from django.core.management import call_command

    tracemalloc.start()
    started = time.perf_counter()
    call_command("active_users_export_activity", "--since", "2025-12-31", "--until", "2027-01-01",
                 "--format", "csv", "--output", out)  # fmt: skip
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{seconds:.1f} {peak} {rss}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="100000,1000000")
    args = parser.parse_args()
    if os.environ.get("EXPORT_DB"):
        setup(os.environ["EXPORT_DB"])
        if os.environ.get("EXPORT_FILL"):
            fill(int(os.environ["EXPORT_FILL"]))
        else:
            export(os.environ["EXPORT_OUT"])
        return
    heads = ("rows", 10), ("seconds", 8), ("python peak MiB", 16), ("process RSS MiB", 16)
    print(" ".join(f"{name:>{width}}" for name, width in heads), f"{'CSV MiB':>8}")
    for rows in [int(r) for r in args.rows.split(",")]:
        folder = tempfile.mkdtemp()
        env = {**os.environ, "EXPORT_DB": f"{folder}/db.sqlite3", "EXPORT_OUT": f"{folder}/out.csv"}
        subprocess.run(
            [sys.executable, __file__], env={**env, "EXPORT_FILL": str(rows)}, check=True
        )
        done = subprocess.run([sys.executable, __file__], env=env, check=True,
                              capture_output=True, text=True)  # fmt: skip
        seconds, peak, rss = done.stdout.split()
        size = os.path.getsize(f"{folder}/out.csv")
        print(f"{rows:>10,} {float(seconds):>8.1f} {int(peak) / 2**20:>16.1f} "
              f"{int(rss) / 2**20:>16.1f} {size / 2**20:>8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
