"""``manage.py demo [addrport]``: the demo site with simulated traffic, served by uvicorn
(pages and WebSockets) in a child process, presence on REDIS_URL or on a throwaway
redis-server, the simulator in a thread of this process. Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo.simulation import ensure_demo_users, simulate, wait_for

EXAMPLE_DIR = Path(__file__).resolve().parents[3]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def lan_address() -> str | None:
    """This machine's address on its network (no packet is sent), for phones on the LAN."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            address = str(sock.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def use_wal() -> None:
    """SQLite in WAL mode (kept in the file): the package's batch writes then never hold
    the pages' reads out (see check active_users.W003)."""
    from django.db import connection

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")


class Command(BaseCommand):
    help = "Set up the demo site (tables, demo users) and serve it with simulated traffic."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--users", type=int, default=12, help="simulated users")
        parser.add_argument("--visitors", type=int, default=5, help="simulated anonymous visitors")
        parser.add_argument("--no-traffic", action="store_true", help="serve without simulation")

    def handle(
        self, *args: Any, addrport: str, users: int, visitors: int, no_traffic: bool, **options: Any
    ) -> None:
        host, _, port = addrport.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit():
            raise CommandError(f"{addrport!r} is not an address and port (0.0.0.0:8000) or a port")
        # Stop cleanly on SIGTERM and SIGHUP as on Ctrl-C: the simulated browsers first, then
        # the server, then Redis. The children have sessions of their own, so that Ctrl-C
        # reaches this process alone (a Redis stopped before the server makes it log errors).
        for number in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, lambda *_: sys.exit(0))
        call_command("migrate", verbosity=0)
        use_wal()
        ensure_demo_users(users)
        local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        with ExitStack() as cleanup:
            try:
                env = self.presence_redis(cleanup)
                server = subprocess.Popen([
                    sys.executable, "-m", "uvicorn", "demo.asgi:application",
                    "--app-dir", str(EXAMPLE_DIR), "--host", host, "--port", port,
                    "--no-access-log", "--log-level", "warning",
                    "--timeout-graceful-shutdown", "10",
                ], env=env, start_new_session=True)  # fmt: skip
                cleanup.callback(stop_process, server)
                self.wait_for_server(server, local)
                if not no_traffic:
                    stop = threading.Event()
                    traffic = threading.Thread(
                        target=simulate,
                        args=(local, users, visitors, 0),
                        kwargs={"say": self.stdout.write, "stop": stop,
                                "reminder": f"{local}/ (admin/admin)"},
                        daemon=True,
                        name="traffic",
                    )  # fmt: skip
                    traffic.start()
                    cleanup.callback(traffic.join, 5)
                    cleanup.callback(stop.set)
                throwaway = "DEMO_PRESENCE_REDIS_URL" in env
                self.welcome(local, host, port, throwaway, users, visitors, no_traffic)
                while server.poll() is None:
                    time.sleep(0.5)
                raise CommandError(f"The demo server stopped (exit status {server.returncode}).")
            except KeyboardInterrupt:
                pass

    def presence_redis(self, cleanup: ExitStack) -> dict[str, str]:
        """The server's environment: REDIS_URL's Redis, else a throwaway redis-server."""
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "demo.settings"}
        if os.environ.get("REDIS_URL"):
            return env
        try:
            from demo.presence_redis import ThrowawayRedis

            redis = ThrowawayRedis()
        except (ImportError, RuntimeError, OSError) as exc:
            self.stderr.write(f"Presence is off: no redis-server to start ({exc}).")
            return env
        cleanup.callback(redis.close)
        env["DEMO_PRESENCE_REDIS_URL"] = redis.url
        return env

    def wait_for_server(self, server: subprocess.Popen[bytes], url: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                wait_for(url, timeout=0)
                return
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise CommandError(f"The demo server did not start at {url}: {exc}") from exc
                time.sleep(0.3)

    def welcome(
        self, url: str, host: str, port: str, throwaway: bool, users: int, visitors: int,
        no_traffic: bool,
    ) -> None:  # fmt: skip
        store = "Redis (REDIS_URL)" if settings.ACTIVE_USERS_BACKEND == "redis" else "SQLite"
        presence = "presence off"
        if os.environ.get("REDIS_URL") or throwaway:
            presence = "presence on " + ("a throwaway redis-server" if throwaway else "REDIS_URL")
        traffic = f"{users} simulated users and {visitors} visitors"
        if no_traffic:
            traffic = "no simulated traffic"
        lines = [
            "",
            f"The demo is running ({store}, {presence}, {traffic}). Ctrl-C stops it.",
            f"  Site:      {url}/",
        ]
        lan = lan_address() if host in ("0.0.0.0", "::") else None
        if lan:
            lines.append(f"  On your network: http://{lan}:{port}/")
        lines += [
            f"  Dashboard: {url}/admin/active_users/dashboard/",
            f"  API:       {url}/active-users/v1/counts/",
            "  Log in as admin / admin (staff), or alice / demo, bob / demo, ...",
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
