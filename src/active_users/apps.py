from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActiveUsersConfig(AppConfig):
    name = "active_users"
    verbose_name = _("Active users")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from active_users import checks  # noqa: F401  (registers the checks)
