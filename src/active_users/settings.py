"""Compatibility with django-active-users: ``active_users_settings.KEY_EXPIRE`` and friends.

The object is the package's :mod:`active_users.conf` settings object. Its values are read
from ``django.conf.settings`` on each access, so they follow ``override_settings`` and
``setting_changed`` without a reload step.
"""

from __future__ import annotations

from active_users.conf import Settings, conf

ActiveUsersSettings = Settings
active_users_settings = conf

__all__ = ["ActiveUsersSettings", "active_users_settings"]
