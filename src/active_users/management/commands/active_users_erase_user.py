from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from active_users.erasure import erase_user, user_id_of
from active_users.faults import GuardedCommand
from active_users.text import printable


class Command(GuardedCommand):
    help = (
        "Erase what the package holds about one user, from every store: live entries, last "
        "seen, activity, daily uniques, browser sessions and presence rooms."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user_id", help="the user's primary key")

    def handle(self, *args: Any, user_id: str, **options: Any) -> None:
        try:  # before erasing anything: a bad id would fail half-way, on the database
            user_id_of(user_id)
        except ValueError:
            raise CommandError(f"Not a user id: {printable(user_id)}.") from None
        erased = erase_user(user_id)
        counts = ", ".join(f"{n} {place.replace('_', ' ')}" for place, n in erased.items())
        self.stdout.write(f"Erased user {printable(user_id)}: live entries, and {counts}.")
