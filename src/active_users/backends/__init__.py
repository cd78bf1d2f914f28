"""Choosing the backend: ``ACTIVE_USERS_BACKEND``, else Redis when the default cache is Redis,
else the database. One instance per process, rebuilt when a setting it depends on changes."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from django.utils.module_loading import import_string

from active_users.backends.base import (
    BaseBackend,
    Counts,
    Page,
    Presence,
    Sample,
    Uniques,
    is_redis_cache,
)
from active_users.conf import conf

__all__ = [
    "BaseBackend",
    "Counts",
    "Page",
    "Presence",
    "Sample",
    "Uniques",
    "backend_path",
    "get_backend",
    "writes_to_sqlite",
]

ALIASES = {
    "redis": "active_users.backends.redis.RedisBackend",
    "database": "active_users.backends.database.DatabaseBackend",
}

_lock = threading.Lock()
_backend: BaseBackend | None = None


def backend_path() -> str:
    name = conf.BACKEND
    if not name:
        default_cache = settings.CACHES.get("default", {})
        name = "redis" if conf.REDIS_URL or is_redis_cache(default_cache) else "database"
    return ALIASES.get(name, name)


def writes_to_sqlite() -> bool:
    """Whether the backend is the database one, on SQLite."""
    return backend_path() == ALIASES["database"] and connections[conf.DATABASE].vendor == "sqlite"


def get_backend() -> BaseBackend:
    global _backend
    backend = _backend
    if backend is None:
        with _lock:
            if _backend is None:
                _backend = import_string(backend_path())()
            backend = _backend
    return backend


def reset_backend() -> None:
    global _backend
    with _lock:
        old, _backend = _backend, None
    if old is not None:
        old.close()


@receiver(setting_changed)
def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ACTIVE_USERS_") or setting in {"CACHES", "DATABASES", "SECRET_KEY"}:
        reset_backend()
