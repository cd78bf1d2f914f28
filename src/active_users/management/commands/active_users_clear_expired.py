from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from active_users.backends import get_backend
from active_users.faults import GuardedCommand


class Command(GuardedCommand):
    help = "Delete active-user entries that have expired (older than ACTIVE_USERS_KEY_EXPIRE)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            deleted = get_backend().clear_expired()
        except Exception as exc:
            raise CommandError(f"The active users store failed: {exc}") from exc
        self.stdout.write(f"Deleted {deleted} expired records.")
