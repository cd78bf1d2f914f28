from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from active_users.backends import get_backend
from active_users.conf import conf
from active_users.text import printable


class Command(BaseCommand):
    help = "Erase what the package holds about one user: live entries, last seen, activity."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user_id", help="the user's primary key")

    def handle(self, *args: Any, user_id: str, **options: Any) -> None:
        try:  # before erasing anything: a bad id would fail half-way, on the database
            pk = get_user_model()._meta.pk.to_python(user_id)
        except ValidationError:
            pk = None
        if pk is None or (isinstance(pk, int) and not -(2**63) <= pk < 2**63):
            raise CommandError(f"Not a user id: {printable(user_id)}.")
        try:
            get_backend().remove_user(str(user_id))
        except Exception as exc:
            raise CommandError(f"The live store failed; nothing was erased there: {exc}") from exc
        erased = 0
        if apps.is_installed("active_users"):
            from active_users.models import Activity, LastSeen

            for model in (LastSeen, Activity):
                erased += model.objects.using(conf.DATABASE).filter(user_id=user_id).delete()[0]
        self.stdout.write(f"Erased user {printable(user_id)}: live entries and {erased} rows.")
