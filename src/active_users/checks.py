"""System checks, registered when ``active_users`` is in ``INSTALLED_APPS``.

- ``active_users.E001``: ``ACTIVE_USERS_KEY_EXPIRE`` is not a positive integer.
- ``active_users.E002``: ``ACTIVE_USERS_KEY_CLASS`` does not import or is not an entry class.
- ``active_users.E003``: ``ACTIVE_USERS_BACKEND`` does not import.
- ``active_users.E004``: ``ACTIVE_USERS_EXCLUDE_URL_PATTERNS`` has a pattern that does not compile.
- ``active_users.E005``: ``ACTIVE_USERS_API_PERMISSION`` is not a known name or callable.
- ``active_users.E006``: the Redis backend is chosen but no Redis is configured.
- ``active_users.E007``: ``ACTIVE_USERS_ACTIVITY_RATE_LIMIT`` is not ``"N/s|m|h|d"`` or None.
- ``active_users.E008``: a number of seconds (an interval, a timeout, a threshold) is not a
  positive number (or, where 0 has a meaning, a non-negative one).
- ``active_users.E009``: a count (a retention, a size, a limit) is not a positive integer.
- ``active_users.E010``: an on/off setting is not True or False.
- ``active_users.E011``: a text setting is not a string (``KEY_PREFIX``, ``REDIS_URL``…).
- ``active_users.E012``: ``ACTIVE_USERS_DATABASE`` or ``ACTIVE_USERS_CACHE`` names no alias.
- ``active_users.E013``: ``ACTIVE_USERS_TRUSTED_PROXIES`` has an entry that is not an address
  or network.
- ``active_users.E014``: ``ACTIVE_USERS_EXCLUDE_USERS`` has an unknown name or a callable that
  does not import.
- ``active_users.E015``: ``ACTIVE_USERS_BOT_USER_AGENT_PATTERN`` is not a regex.
- ``active_users.E016``: ``ACTIVE_USERS_ACTIVITY_EVENTS`` is not a list of event names.
- ``active_users.E017``: ``ACTIVE_USERS_PRESENCE_AUTHORIZE`` does not import.
- ``active_users.W001``: the middleware is listed before ``AuthenticationMiddleware``.
- ``active_users.W002``: ``ACTIVE_USERS_PROMETHEUS`` is on without ``prometheus_client``.
- ``active_users.W003``: the database the package writes to is an SQLite file in a
  rollback-journal mode (a database check: ``migrate`` and ``check --database`` run it).
- ``active_users.E050``: ``ACTIVE_USERS_REDIS_SHARDS`` is not an integer from 1 to 1024.
- ``active_users.W050``: ``ACTIVE_USERS_REDIS_SHARDS`` > 1 without ``ACTIVE_USERS_REDIS_CLUSTER``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from active_users.conf import conf, parse_rate

MIDDLEWARE = "active_users.middleware.ActiveUsersSessionMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
UNSET = object()
EXCLUDE_USERS_NAMES = ("staff", "superuser", "superusers")


def _error(msg: str, id: str, hint: str | None = None) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"active_users.{id}")


def _raw(name: str) -> Any:
    return getattr(settings, f"ACTIVE_USERS_{name}", UNSET)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(value: Any) -> bool:
    """A list or tuple of strings (not one string, which would be read letter by letter)."""
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _importable_callable(path: str) -> bool:
    try:
        return callable(conf.import_callable(path))
    except ImportError:
        return False


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
    backend = _raw("BACKEND")
    path = backend_path() if backend is UNSET or isinstance(backend, str | None) else None
    if path is not None:
        try:
            import_string(path)
        except ImportError as exc:
            errors.append(_error(f"ACTIVE_USERS_BACKEND {path!r} does not import: {exc}.", "E003"))
    patterns = _raw("EXCLUDE_URL_PATTERNS")
    if patterns is not UNSET and patterns is not None and not _strings(patterns):
        errors.append(
            _error("ACTIVE_USERS_EXCLUDE_URL_PATTERNS must be a list of regexes.", "E004")
        )
    else:
        for pattern in conf.EXCLUDE_URL_PATTERNS:
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(
                    _error(
                        f"ACTIVE_USERS_EXCLUDE_URL_PATTERNS: {pattern!r} is not a regex: {exc}.",
                        "E004",
                    )
                )
    permission = conf.API_PERMISSION
    if not callable(permission) and not (
        isinstance(permission, str) and (permission in NAMED or _importable_callable(permission))
    ):
        errors.append(
            _error(
                f"ACTIVE_USERS_API_PERMISSION {permission!r} is neither one of "
                f"{', '.join(NAMED)} nor an importable callable.",
                "E005",
            )
        )
    redis_url = _raw("REDIS_URL")
    if (
        path is not None
        and path.endswith("RedisBackend")
        and not (
            (isinstance(redis_url, str) and redis_url)
            or is_redis_cache(settings.CACHES.get("default", {}))
        )
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
                       "E017")
            )  # fmt: skip
    if _raw("PROMETHEUS") is True:
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


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _non_negative(value: Any) -> bool:
    return _is_number(value) and value >= 0


def _count(value: Any) -> bool:
    return _is_int(value) and value > 0


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _or_none(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or ok(value)


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _proxies(value: Any) -> bool:
    if not _strings(value):
        return False
    try:
        for proxy in value:
            ipaddress.ip_network(proxy, strict=False)
    except ValueError:
        return False
    return True


def _exclude_users(value: Any) -> bool:
    rules = [value] if isinstance(value, str) or callable(value) else value
    if not isinstance(rules, (list, tuple)):
        return False
    return all(
        callable(rule)
        or (isinstance(rule, str) and (rule in EXCLUDE_USERS_NAMES or _importable_callable(rule)))
        for rule in rules
    )


def _regex(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def _event_names(value: Any) -> bool:
    from active_users.activity import MAX_EVENT_NAME

    return _strings(value) and all(0 < len(v) <= MAX_EVENT_NAME for v in value)


BOOLEANS = (
    "TRACK_ANONYMOUS", "EXCLUDE_BOTS", "STORE_IP", "ANONYMIZE_IP", "REDIS_CLUSTER",
    "LAST_SEEN", "ADMIN", "HISTORY", "PRESENCE_ANONYMOUS", "PROMETHEUS",
    "PRESENCE_SHOW_NAMES_TO_ANONYMOUS",
)  # fmt: skip
SECONDS = "a positive number of seconds"
SECONDS_OR_ZERO = "a number of seconds, 0 or more"
# Setting (without ACTIVE_USERS_), test, check id, what it must be. ACTIVITY_RATE_LIMIT (E007),
# DATABASE and CACHE (E012) are checked apart: their messages say more.
RULES: list[tuple[str, Callable[[Any], bool], str, str]] = [
    ("REDIS_TIMEOUT", _positive, "E008", SECONDS),
    ("LAST_SEEN_INTERVAL", _positive, "E008", SECONDS),
    ("ONLINE_AFTER", _positive, "E008", SECONDS),
    ("IDLE_AFTER", _positive, "E008", SECONDS),
    ("DASHBOARD_REFRESH", _positive, "E008", SECONDS),
    ("PRESENCE_HEARTBEAT", _positive, "E008", SECONDS),
    ("PRESENCE_TIMEOUT", _or_none(_positive), "E008", SECONDS + " or None"),
    ("ACTIVITY_MAX_SKEW", _positive, "E008", SECONDS),
    ("ACTIVITY_HEARTBEAT", _positive, "E008", SECONDS),
    ("FLUSH_INTERVAL", _or_none(_positive), "E008", SECONDS + " or None"),
    ("PRESENCE_TOKEN_MAX_AGE", _positive, "E008", SECONDS),
    # 0: write on every request, retry a failing store at once, no grace, no throttle.
    ("TOUCH_INTERVAL", _or_none(_non_negative), "E008", SECONDS_OR_ZERO + " or None"),
    ("FAILURE_COOLDOWN", _non_negative, "E008", SECONDS_OR_ZERO),
    ("PRESENCE_GRACE", _non_negative, "E008", SECONDS_OR_ZERO),
    ("PRESENCE_COUNT_INTERVAL", _non_negative, "E008", SECONDS_OR_ZERO),
    ("HISTORY_MINUTE_RETENTION", _count, "E009", "a positive integer (hours)"),
    ("HISTORY_DAY_RETENTION", _count, "E009", "a positive integer (days)"),
    ("ACTIVITY_MAX_BODY", _count, "E009", "a positive integer (bytes)"),
    ("ACTIVITY_MAX_EVENTS", _count, "E009", "a positive integer"),
    ("BUFFER_SIZE", _count, "E009", "a positive integer"),
    ("ACTIVITY_RETENTION", _or_none(_count), "E009", "a positive integer (days) or None"),
    # 0: rooms of any size get throttled counts instead of join and leave events.
    ("PRESENCE_LIST_LIMIT", lambda v: _is_int(v) and v >= 0, "E009", "an integer, 0 or more"),
    *((name, _boolean, "E010", "True or False") for name in BOOLEANS),
    ("BACKEND", _or_none(_text), "E011", "a non-empty string or None"),
    ("REDIS_URL", _or_none(_text), "E011", "a non-empty string or None"),
    ("KEY_PREFIX", _text, "E011", "a non-empty string"),
    ("PRESENCE_URL", _text, "E011", "a non-empty string"),
    ("TRUSTED_PROXIES", _proxies, "E013", 'a list of addresses or networks ("10.0.0.0/8")'),
    (
        "EXCLUDE_USERS",
        _exclude_users,
        "E014",
        '"staff", "superusers", a callable or its dotted path, or a list of them',
    ),
    ("BOT_USER_AGENT_PATTERN", _regex, "E015", "a regular expression"),
    ("ACTIVITY_EVENTS", _event_names, "E016", "a list of event names of 1 to 32 characters"),
]


@checks.register(checks.Tags.compatibility)
def check_values(**kwargs: Any) -> list[checks.CheckMessage]:
    """Every typed setting: a bad value stops ``manage.py check``, not a request later."""
    errors: list[checks.CheckMessage] = []
    for name, ok, id, must in RULES:
        value = _raw(name)
        if value is not UNSET and not ok(value):
            errors.append(_error(f"ACTIVE_USERS_{name} must be {must}, not {value!r}.", id))
    rate = _raw("ACTIVITY_RATE_LIMIT")
    if rate not in (UNSET, None, ""):
        try:
            parse_rate(rate)
        except (TypeError, ValueError) as exc:
            errors.append(
                _error(
                    f"ACTIVE_USERS_ACTIVITY_RATE_LIMIT: {exc}.",
                    "E007",
                    hint='For example "120/m"; None turns the limit off.',
                )
            )
    for name, aliases in (("DATABASE", settings.DATABASES), ("CACHE", settings.CACHES)):
        value = _raw(name)
        if value is not UNSET and not (isinstance(value, str) and value in aliases):
            errors.append(
                _error(
                    f"ACTIVE_USERS_{name} {value!r} is not one of the {name}S aliases "
                    f"({', '.join(aliases)}).",
                    "E012",
                )
            )
    return errors


ROLLBACK_JOURNALS = {"delete", "truncate", "persist"}


@checks.register(checks.Tags.database)
def check_sqlite_journal(databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """In a rollback-journal mode, SQLite's commit locks out readers: the write-behind
    flush (once a second per process) and the last-seen flush then stall the site's own
    queries for the length of a commit. WAL lets readers and one writer run together."""
    from django.db import connections

    alias = conf.DATABASE
    if not databases or alias not in databases or connections[alias].vendor != "sqlite":
        return []
    with connections[alias].cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0]).lower()
    if mode not in ROLLBACK_JOURNALS:
        return []
    return [
        checks.Warning(
            f"The SQLite database {alias!r} is in {mode!r} journal mode: each commit of the "
            "package's batch writes (about one a second per process) holds the site's "
            "readers out until it is on disk.",
            hint="Switch the file to WAL once (it is kept in the file): "
            '"PRAGMA journal_mode=WAL;" (on Django 5.1+ also through '
            'DATABASES[...]["OPTIONS"]["init_command"]). See the README, "Production notes".',
            id="active_users.W003",
        )
    ]


@checks.register(checks.Tags.compatibility)
def check_shards(**kwargs: Any) -> list[checks.CheckMessage]:
    """``REDIS_SHARDS``: a count of shards, and of use only on a Redis Cluster."""
    from active_users.backends.shards import MAX_SHARDS

    value = _raw("REDIS_SHARDS")
    if value is UNSET:
        return []
    if not (_is_int(value) and 1 <= value <= MAX_SHARDS):
        return [_error(f"ACTIVE_USERS_REDIS_SHARDS must be an integer from 1 to {MAX_SHARDS}, "
                       f"not {value!r}.", "E050")]  # fmt: skip
    if value > 1 and _raw("REDIS_CLUSTER") is not True:
        return [
            checks.Warning(
                f"ACTIVE_USERS_REDIS_SHARDS is {value} but ACTIVE_USERS_REDIS_CLUSTER is off: "
                "the shards all live on the one Redis, which gains nothing from them.",
                hint="Set ACTIVE_USERS_REDIS_CLUSTER = True on a Redis Cluster, or leave "
                "REDIS_SHARDS at 1.",
                id="active_users.W050",
            )
        ]
    return []
