from __future__ import annotations

from datetime import timedelta
from typing import Any

from active_users import clock
from active_users.conf import conf
from active_users.faults import GuardedCommand
from active_users.management.arguments import MAX_DAYS, number
from active_users.models import LastSeen


class Command(GuardedCommand):
    help = "Delete last-seen rows of users not seen for more than --days days."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--days", type=number(int, 0, MAX_DAYS), required=True, help="keep users seen since"
        )

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        before = clock.ago(timedelta(days=days))
        stale = LastSeen.objects.using(conf.DATABASE).filter(last_activity__lt=before)
        deleted, _ = stale.delete()
        self.stdout.write(f"Deleted {deleted} last-seen rows older than {days} days.")
