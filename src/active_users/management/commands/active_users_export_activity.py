from __future__ import annotations

import argparse
import csv
import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.core.management.base import CommandError

from active_users import clock
from active_users.conf import conf
from active_users.faults import GuardedCommand
from active_users.management.arguments import output_file
from active_users.models import Activity
from active_users.text import csv_cell, printable

FIELDS = ["id", "date", "event", "user_id", "session", "ip", "path", "referer"]
BATCH = 5000


def _moment(value: str) -> datetime:
    moment = clock.parse(value, allow_date=True)
    if moment is None:
        raise CommandError(f"Not a date: {value!r} (use 2026-11-01 or 2026-11-01T12:00:00Z).")
    return clock.from_client(moment)


def _date_argument(value: str) -> datetime:
    try:
        return _moment(value)
    except (CommandError, ValueError, OverflowError) as exc:
        message = str(exc) if isinstance(exc, CommandError) else f"not a date: {value!r} ({exc})"
        raise argparse.ArgumentTypeError(printable(message)) from None


class Command(GuardedCommand):
    help = (
        "Export activity of a date range as CSV or JSON lines, streaming in constant memory; "
        "CSV cells a spreadsheet would read as formulas get a leading '."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--since", required=True, type=_date_argument, help="first date (inclusive)"
        )
        parser.add_argument(
            "--until", required=True, type=_date_argument, help="last date (exclusive)"
        )
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument(
            "--output", default="-", type=output_file, help="file name; - for standard output"
        )

    def handle(self, *args: Any, since: datetime, until: datetime, format: str, output: str,
               **options: Any) -> None:  # fmt: skip
        start, end = since, until
        to_file = output != "-"
        # OutputWrapper adds a newline unless told not to; the rows carry their own.
        try:
            out: Any = (
                open(output, "w", newline="", encoding="utf-8")
                if to_file
                else SimpleNamespace(write=lambda text: self.stdout.write(text, ending=""))
            )
        except OSError as exc:
            raise CommandError(f"Cannot write {printable(output)}: {exc.strerror}.") from None
        try:
            writer = csv.writer(out) if format == "csv" else None
            if writer is not None:
                writer.writerow(FIELDS)
            count = 0
            for row in self.rows(start, end):
                if writer is not None:
                    writer.writerow([csv_cell(value) for value in row])
                else:
                    out.write(json.dumps(dict(zip(FIELDS, row)), ensure_ascii=False) + "\n")
                count += 1
        finally:
            if to_file:
                out.close()
        self.stderr.write(f"Exported {count} events.")

    def rows(self, start: datetime, end: datetime) -> Any:
        """Keyset batches on (date, id): constant memory on every database driver."""
        base = Activity.objects.using(conf.DATABASE).filter(date__gte=start, date__lt=end)
        base = base.order_by("date", "id")
        last = None
        while True:
            batch = (
                base
                if last is None
                else base.filter(date__gte=last[1]).exclude(date=last[1], id__lte=last[0])
            )
            rows = list(batch.values_list(*FIELDS)[:BATCH])
            for row in rows:
                yield [clock.iso(value) if isinstance(value, datetime) else value
                       for value in row]  # fmt: skip
            if len(rows) < BATCH:
                return
            last = rows[-1]
