from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError

from active_users import api, clock
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.faults import GuardedCommand
from active_users.history import get_uniques
from active_users.management.arguments import number
from active_users.text import printable, printable_json

CLEAR = "\033[H\033[2J"


def _age(moment: datetime) -> str:
    seconds = max(0, int(clock.seconds_since(moment)))
    return f"{seconds} s ago"


class Command(GuardedCommand):
    help = (
        "Show who is active now: the counts, unique users today, in 7 and in 30 days, and a "
        "table of active users."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON, for scripts")
        parser.add_argument(
            "--limit",
            type=number(int, 1, api.MAX_PAGE_SIZE),
            default=20,
            help="rows of the table (max 1000)",
        )
        parser.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
        parser.add_argument(
            "--interval",
            type=number(float, 0.01, 86400),
            default=2.0,
            help="seconds between refreshes",
        )
        parser.add_argument(
            "--times", type=number(int, 0, 10**9), default=0, help="with --watch: stop after N"
        )

    def handle(self, *args: Any, json: bool, limit: int, watch: bool, interval: float,
               times: int, **options: Any) -> None:  # fmt: skip
        shown = 0
        try:
            while True:
                text = self.render(limit, as_json=json)
                self.stdout.write((CLEAR if watch and not json else "") + text)
                shown += 1
                if not watch or (times and shown >= times):
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return

    def render(self, limit: int, as_json: bool) -> str:
        try:
            counts = api.get_active_counts()
            page = api.get_active_users_page(limit=limit)
            uniques = get_uniques(days=0, months=0) if conf.HISTORY else None
        except StoreUnavailable as exc:
            raise CommandError(str(exc)) from exc
        if as_json:
            users = [{**u, "last_active": clock.iso(u["last_active"])} for u in page.users]
            found = {"entries": counts.entries, "users": counts.users,
                     "visitors": counts.visitors, "active_users": users}  # fmt: skip
            if uniques is not None:
                found.update({k: uniques[k] for k in ("dau", "wau", "mau", "dau_mau")})
            return printable_json(found)
        lines = [
            f"Active now: {counts.entries} sessions of {counts.users} users, "
            f"{counts.visitors} anonymous visitors (active = a request in the last "
            f"{conf.KEY_EXPIRE} s)",
        ]
        if uniques is not None:
            lines.append(
                f"Unique users: {uniques['dau']} today, {uniques['wau']} in 7 days, "
                f"{uniques['mau']} in 30 days (DAU/MAU {uniques['dau_mau']:.0%})"
            )
        lines.append("")
        fields = list(conf.KEY_CLASS.fields)
        rows = [
            [printable(u.get(f, "")) for f in fields] + [_age(u["last_active"])] for u in page.users
        ]
        header = [f.upper() for f in fields] + ["LAST ACTIVE"]
        widths = [max(len(c) for c in column) for column in zip(header, *rows)]
        for row in [header, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if counts.entries > len(rows):
            lines.append(f"… and {counts.entries - len(rows)} more")
        return "\n".join(lines)
