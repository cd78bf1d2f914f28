from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from demo.simulation import ensure_demo_users, simulate, wait_for


class Command(BaseCommand):
    help = "Log demo users in over HTTP and make them browse the running demo site."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--users", type=int, default=12)
        parser.add_argument("--visitors", type=int, default=5)
        parser.add_argument("--seconds", type=float, default=0, help="0: until Ctrl-C")

    def handle(
        self, *args: Any, url: str, users: int, visitors: int, seconds: float, **options: Any
    ) -> None:
        ensure_demo_users(users)
        try:
            wait_for(url, timeout=10)
        except OSError as exc:
            raise CommandError(f"No demo site answers at {url}: {exc}") from exc
        try:
            simulate(url, users, visitors, seconds, say=self.stdout.write)
        except KeyboardInterrupt:
            pass
