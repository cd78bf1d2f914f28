from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from active_users.activity import retention_cutoff
from active_users.conf import conf
from active_users.faults import GuardedCommand
from active_users.management.arguments import MAX_DAYS, number
from active_users.models import Activity

BATCH = 10_000


class Command(GuardedCommand):
    help = (
        "Delete activity older than ACTIVE_USERS_ACTIVITY_RETENTION days (or --days), in batches."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=number(int, 0, MAX_DAYS), default=None)

    def handle(self, *args: Any, days: int | None, **options: Any) -> None:
        days = conf.ACTIVITY_RETENTION if days is None else days
        if days is None:
            raise CommandError("No retention: set ACTIVE_USERS_ACTIVITY_RETENTION or pass --days.")
        rows = Activity.objects.using(conf.DATABASE)
        old = rows.filter(date__lt=retention_cutoff(days)).order_by("id")
        deleted = 0
        while ids := list(old.values_list("id", flat=True)[:BATCH]):
            deleted += rows.filter(id__in=ids).delete()[0]
        self.stdout.write(f"Deleted {deleted} activity rows older than {days} days.")
