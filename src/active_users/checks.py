"""System checks, registered when ``active_users`` is in ``INSTALLED_APPS``.

- ``active_users.E001``: ``ACTIVE_USERS_KEY_EXPIRE`` is not a positive integer.
- ``active_users.E002``: ``ACTIVE_USERS_KEY_CLASS`` does not import or is not an entry class.
- ``active_users.E003``: ``ACTIVE_USERS_BACKEND`` does not import.
- ``active_users.E004``: ``ACTIVE_USERS_EXCLUDE_URL_PATTERNS`` has a pattern that does not compile.
- ``active_users.E005``: ``ACTIVE_USERS_API_PERMISSION`` is not a known name or callable.
- ``active_users.E006``: the Redis backend is chosen but no Redis is configured.
- ``active_users.E007``: ``ACTIVE_USERS_PRESENCE_AUTHORIZE`` does not import.
- ``active_users.W001``: the middleware is listed before ``AuthenticationMiddleware``.
- ``active_users.W002``: ``ACTIVE_USERS_PROMETHEUS`` is on without ``prometheus_client``.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from active_users.conf import conf

MIDDLEWARE = "active_users.middleware.ActiveUsersSessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _error(msg: str, id: str, hint: str | None = None) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"active_users.{id}")


@checks.register(checks.Tags.compatibility)
def check_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    from active_users.backends import backend_path
    from active_users.backends.base import is_redis_cache
    from active_users.keys import AbstractActiveUserEntry
    from active_users.permissions import NAMED

    errors: list[checks.CheckMessage] = []
    expire = getattr(settings, "ACTIVE_USERS_KEY_EXPIRE", 20)
    if not isinstance(expire, int) or isinstance(expire, bool) or expire <= 0:
        errors.append(_error("ACTIVE_USERS_KEY_EXPIRE must be a positive integer.", "E001"))
    try:
        key_class = conf.KEY_CLASS
    except ImportError as exc:
        errors.append(_error(f"ACTIVE_USERS_KEY_CLASS does not import: {exc}.", "E002"))
    else:
        if not (isinstance(key_class, type) and issubclass(key_class, AbstractActiveUserEntry)):
            errors.append(
                _error(
                    "ACTIVE_USERS_KEY_CLASS must be a subclass of "
                    "active_users.keys.AbstractActiveUserEntry.",
                    "E002",
                )
            )
    path = backend_path()
    try:
        import_string(path)
    except ImportError as exc:
        errors.append(_error(f"ACTIVE_USERS_BACKEND {path!r} does not import: {exc}.", "E003"))
    for pattern in conf.EXCLUDE_URL_PATTERNS:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            errors.append(
                _error(
                    f"ACTIVE_USERS_EXCLUDE_URL_PATTERNS: {pattern!r} is not a regex: {exc}.", "E004"
                )
            )
    permission = conf.API_PERMISSION
    if not callable(permission) and permission not in NAMED:
        try:
            conf.import_callable(permission)
        except ImportError:
            errors.append(
                _error(
                    f"ACTIVE_USERS_API_PERMISSION {permission!r} is neither one of "
                    f"{', '.join(NAMED)} nor an importable callable.",
                    "E005",
                )
            )
    if path.endswith("RedisBackend") and not (
        conf.REDIS_URL or is_redis_cache(settings.CACHES.get("default", {}))
    ):
        errors.append(
            _error(
                "The Redis backend is chosen but no Redis is configured.",
                "E006",
                hint="Set ACTIVE_USERS_REDIS_URL, or make the default cache a Redis cache.",
            )
        )
    authorize = getattr(settings, "ACTIVE_USERS_PRESENCE_AUTHORIZE", None)
    if isinstance(authorize, str):
        try:
            import_string(authorize)
        except ImportError as exc:
            errors.append(
                _error(f"ACTIVE_USERS_PRESENCE_AUTHORIZE {authorize!r} does not import: {exc}.",
                       "E007")
            )  # fmt: skip
    if conf.PROMETHEUS:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            errors.append(
                checks.Warning(
                    "ACTIVE_USERS_PROMETHEUS is on but prometheus_client is not installed.",
                    hint="pip install prometheus_client",
                    id="active_users.W002",
                )
            )
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE in middleware and AUTH_MIDDLEWARE in middleware:
        if middleware.index(MIDDLEWARE) < middleware.index(AUTH_MIDDLEWARE):
            errors.append(
                checks.Warning(
                    f"{MIDDLEWARE} is listed before {AUTH_MIDDLEWARE}; no user will be seen.",
                    hint="Move it after AuthenticationMiddleware.",
                    id="active_users.W001",
                )
            )
    return errors
