from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from active_users.conf import conf
from active_users.faults import GuardedCommand
from active_users.last_seen import flush_last_seen


class Command(GuardedCommand):
    help = "Write the last-seen times still held by the live store to the database, now."

    def handle(self, *args: Any, **options: Any) -> None:
        if not conf.LAST_SEEN:
            raise CommandError("Last seen is off (ACTIVE_USERS_LAST_SEEN = False).")
        try:
            written = flush_last_seen(force=True)
        except Exception as exc:
            raise CommandError(f"Could not flush last-seen times: {exc}") from exc
        self.stdout.write(f"Wrote the last-seen time of {written} users.")
