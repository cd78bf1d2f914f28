from __future__ import annotations

import threading
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from demo.simulation import ensure_demo_users, simulate, wait_for


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
        call_command("migrate", verbosity=0)
        ensure_demo_users(users)
        url = f"http://{addrport}"
        self.stdout.write(
            f"\nDemo site: {url}/  (log in as admin/admin, or alice/demo, bob/demo, ...)\n"
            f"JSON: {url}/active-users/active-users-info/   Admin: {url}/admin/\n"
        )
        if not no_traffic:

            def run() -> None:
                wait_for(url)
                simulate(url, users, visitors, 0, say=self.stdout.write)

            threading.Thread(target=run, daemon=True, name="traffic").start()
        call_command("runserver", addrport, use_reloader=False)
