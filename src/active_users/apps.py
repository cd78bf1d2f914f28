from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ActiveUsersConfig(AppConfig):
    name = "active_users"
    verbose_name = _("Active users")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from active_users import checks  # noqa: F401  (registers the checks)
        from active_users.receivers import connect_signals

        connect_signals()
        from django.apps import apps

        from active_users.conf import conf
        from active_users.metrics import register_from_settings

        register_from_settings()
        if conf.ADMIN and apps.is_installed("django.contrib.admin"):
            from active_users.admin import extend_user_admin

            extend_user_admin()
