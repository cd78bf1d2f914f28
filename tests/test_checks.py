from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from active_users.backends import backend_path, get_backend
from active_users.checks import check_settings, check_values
from active_users.conf import conf


def ids(**overrides: object) -> list[str]:
    with override_settings(**overrides):
        messages = [*check_settings(), *check_values()]
        return [message.id for message in messages]  # type: ignore[misc]


def test_the_test_settings_pass_every_check() -> None:
    assert ids() == []


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("ACTIVE_USERS_KEY_EXPIRE", "20", "active_users.E001"),
        ("ACTIVE_USERS_KEY_EXPIRE", 0, "active_users.E001"),
        ("ACTIVE_USERS_KEY_CLASS", "nowhere.Entry", "active_users.E002"),
        ("ACTIVE_USERS_KEY_CLASS", "collections.OrderedDict", "active_users.E002"),
        ("ACTIVE_USERS_BACKEND", "nowhere.Backend", "active_users.E003"),
        ("ACTIVE_USERS_EXCLUDE_URL_PATTERNS", ["(unclosed"], "active_users.E004"),
        ("ACTIVE_USERS_API_PERMISSION", "admins", "active_users.E005"),
        ("ACTIVE_USERS_BACKEND", "redis", "active_users.E006"),
        ("ACTIVE_USERS_EXCLUDE_URL_PATTERNS", "^/health/", "active_users.E004"),
        ("ACTIVE_USERS_API_PERMISSION", ["staff"], "active_users.E005"),
        ("ACTIVE_USERS_API_PERMISSION", "django.conf.settings", "active_users.E005"),
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", "120/x", "active_users.E007"),
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", "120/month", "active_users.E007"),
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", "many/m", "active_users.E007"),
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", "0/m", "active_users.E007"),
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", 120, "active_users.E007"),
        ("ACTIVE_USERS_LAST_SEEN_INTERVAL", 0, "active_users.E008"),
        ("ACTIVE_USERS_IDLE_AFTER", -900, "active_users.E008"),
        ("ACTIVE_USERS_ONLINE_AFTER", "300", "active_users.E008"),
        ("ACTIVE_USERS_REDIS_TIMEOUT", float("nan"), "active_users.E008"),
        ("ACTIVE_USERS_PRESENCE_TIMEOUT", 0, "active_users.E008"),
        ("ACTIVE_USERS_TOUCH_INTERVAL", -1, "active_users.E008"),
        ("ACTIVE_USERS_FAILURE_COOLDOWN", True, "active_users.E008"),
        ("ACTIVE_USERS_DASHBOARD_REFRESH", float("inf"), "active_users.E008"),
        ("ACTIVE_USERS_HISTORY_DAY_RETENTION", 0, "active_users.E009"),
        ("ACTIVE_USERS_HISTORY_MINUTE_RETENTION", 1.5, "active_users.E009"),
        ("ACTIVE_USERS_ACTIVITY_MAX_EVENTS", -1, "active_users.E009"),
        ("ACTIVE_USERS_ACTIVITY_RETENTION", "90", "active_users.E009"),
        ("ACTIVE_USERS_PRESENCE_LIST_LIMIT", -1, "active_users.E009"),
        ("ACTIVE_USERS_TRACK_ANONYMOUS", "False", "active_users.E010"),
        ("ACTIVE_USERS_HISTORY", 1, "active_users.E010"),
        ("ACTIVE_USERS_KEY_PREFIX", "", "active_users.E011"),
        ("ACTIVE_USERS_REDIS_URL", 6379, "active_users.E011"),
        ("ACTIVE_USERS_BACKEND", ["redis"], "active_users.E011"),
        ("ACTIVE_USERS_DATABASE", "replica", "active_users.E012"),
        ("ACTIVE_USERS_CACHE", "sessions", "active_users.E012"),
        ("ACTIVE_USERS_TRUSTED_PROXIES", ["10.0.0.0/8", "proxy.local"], "active_users.E013"),
        ("ACTIVE_USERS_TRUSTED_PROXIES", "10.0.0.1", "active_users.E013"),
        ("ACTIVE_USERS_EXCLUDE_USERS", ["admins"], "active_users.E014"),
        ("ACTIVE_USERS_BOT_USER_AGENT_PATTERN", "bot(", "active_users.E015"),
        ("ACTIVE_USERS_ACTIVITY_EVENTS", "download", "active_users.E016"),
        ("ACTIVE_USERS_ACTIVITY_EVENTS", ["x" * 33], "active_users.E016"),
        ("ACTIVE_USERS_PRESENCE_AUTHORIZE", "nowhere.may_join", "active_users.E017"),
    ],
)
def test_a_bad_setting_is_reported_with_its_id(setting: str, value: object, check_id: str) -> None:
    assert check_id in ids(**{setting: value})


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", None),
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", "10/s"),
        ("ACTIVE_USERS_ACTIVITY_RATE_LIMIT", "1000/hour"),
        ("ACTIVE_USERS_TOUCH_INTERVAL", 0),
        ("ACTIVE_USERS_PRESENCE_TIMEOUT", None),
        ("ACTIVE_USERS_ACTIVITY_RETENTION", None),
        ("ACTIVE_USERS_ONLINE_AFTER", 120.5),
        ("ACTIVE_USERS_TRUSTED_PROXIES", ["10.0.0.0/8", "2001:db8::1"]),
        ("ACTIVE_USERS_EXCLUDE_USERS", ["staff", "superusers", "operator.not_"]),
        ("ACTIVE_USERS_EXCLUDE_USERS", "staff"),
        ("ACTIVE_USERS_ACTIVITY_EVENTS", ["download", "print"]),
        ("ACTIVE_USERS_REDIS_URL", None),
        ("ACTIVE_USERS_CACHE", "default"),
    ],
)
def test_a_good_setting_passes(setting: str, value: object) -> None:
    assert ids(**{setting: value}) == []


def test_a_bad_setting_stops_manage_py_check_naming_the_setting() -> None:
    with override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="120/x", ACTIVE_USERS_HISTORY="no"):
        with pytest.raises(SystemCheckError) as raised:
            call_command("check")
    assert "active_users.E007" in str(raised.value)
    assert "ACTIVE_USERS_ACTIVITY_RATE_LIMIT" in str(raised.value)
    assert "ACTIVE_USERS_HISTORY must be True or False, not 'no'" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "rate"),
    [("120/m", (120, 60)), ("120", (120, 60)), ("5/s", (5, 1)), ("30/min", (30, 60)),
     ("2/hours", (2, 3600)), ("1000/D", (1000, 86400))],
)  # fmt: skip
def test_rate_limits_are_read_in_every_spelling_the_checks_accept(
    value: str, rate: tuple[int, int]
) -> None:
    with override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT=value):
        assert conf.ACTIVITY_RATE_LIMIT == rate


def test_a_bad_rate_limit_read_anyway_names_the_setting() -> None:
    with override_settings(ACTIVE_USERS_ACTIVITY_RATE_LIMIT="120/x"):
        with pytest.raises(ImproperlyConfigured, match="ACTIVE_USERS_ACTIVITY_RATE_LIMIT"):
            conf.ACTIVITY_RATE_LIMIT  # noqa: B018


def test_middleware_before_authentication_is_warned_about(settings) -> None:  # type: ignore[no-untyped-def]
    order = list(reversed(settings.MIDDLEWARE))
    assert "active_users.W001" in ids(MIDDLEWARE=order)


def test_the_default_backend_follows_the_default_cache() -> None:
    with override_settings(ACTIVE_USERS_BACKEND=None):
        assert backend_path().endswith("DatabaseBackend")
        redis_cache = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/3",
            }
        }
        with override_settings(CACHES=redis_cache):
            assert backend_path().endswith("RedisBackend")


def test_the_database_backend_without_the_app_installed_says_what_to_do() -> None:
    with override_settings(INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"]):
        with pytest.raises(ImproperlyConfigured, match="add 'active_users' to INSTALLED_APPS"):
            get_backend()


def test_redis_settings_come_from_the_cache_with_bounded_timeouts() -> None:
    from active_users.backends.redis import connection_settings

    cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ["redis://10.1.2.3:6380/4", "redis://replica:6379/4"],
            "OPTIONS": {"password": "s3cret"},
        }
    }
    with override_settings(CACHES=cache, ACTIVE_USERS_REDIS_URL=None):
        url, options = connection_settings()
    assert url == "redis://10.1.2.3:6380/4"
    assert options["password"] == "s3cret"
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.25


@pytest.mark.django_db
def test_clear_expired_command_reports_what_it_deleted(capsys) -> None:  # type: ignore[no-untyped-def]
    import time

    from active_users.backends import Presence

    get_backend().touch(Presence('["1"]', "1"), now=time.time() - 86400)
    get_backend().touch(Presence('["2"]', "2"))
    call_command("active_users_clear_expired")
    assert "Deleted 2 expired records." in capsys.readouterr().out  # the entry, its user
    assert get_backend().count() == 1


def settings_read_by_conf() -> set[str]:
    source = (Path(__file__).parent.parent / "src/active_users/conf.py").read_text()
    return set(re.findall(r'_get\("([A-Z_]+)"', source))


def test_every_setting_has_a_heading_in_the_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    headings = "\n".join(line for line in readme.splitlines() if line.startswith("### `"))
    missing = {name for name in settings_read_by_conf() if f"ACTIVE_USERS_{name}" not in headings}
    assert missing == set()


def test_every_setting_is_checked() -> None:
    from active_users.checks import RULES

    apart = {"KEY_EXPIRE", "KEY_CLASS", "EXCLUDE_URL_PATTERNS", "API_PERMISSION",
             "ACTIVITY_RATE_LIMIT", "DATABASE", "CACHE", "PRESENCE_AUTHORIZE",
             "REDIS_SHARDS"}  # fmt: skip
    assert settings_read_by_conf() - apart - {name for name, *_ in RULES} == set()


SQLITE_CHECK = """
import sys
import django
from django.conf import settings
from django.core.management import call_command

settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "active_users"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
    ACTIVE_USERS_BACKEND="database",
)
django.setup()
call_command("check", databases=["default"])
"""


@pytest.mark.parametrize(("journal", "warned"), [("delete", True), ("wal", False)])
def test_an_sqlite_file_in_rollback_journal_mode_is_warned_about(
    tmp_path: Path, journal: str, warned: bool
) -> None:
    import sqlite3
    import subprocess
    import sys

    database = tmp_path / "site.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute(f"PRAGMA journal_mode={journal}")
    done = subprocess.run([sys.executable, "-c", SQLITE_CHECK, str(database)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ("active_users.W003" in done.stderr + done.stdout) is warned
    if warned:
        assert "'delete' journal mode" in done.stderr + done.stdout


@pytest.mark.parametrize("value", [0, -1, 1025, 2.0, "16", True])
def test_a_bad_shard_count_is_an_error(value: object) -> None:
    from active_users.checks import check_shards

    with override_settings(ACTIVE_USERS_REDIS_SHARDS=value):
        assert [m.id for m in check_shards()] == ["active_users.E050"]


def test_shards_without_a_cluster_are_allowed_with_a_warning() -> None:
    from active_users.checks import check_shards

    with override_settings(ACTIVE_USERS_REDIS_SHARDS=16):
        assert [m.id for m in check_shards()] == ["active_users.W050"]
    with override_settings(ACTIVE_USERS_REDIS_SHARDS=16, ACTIVE_USERS_REDIS_CLUSTER=True):
        assert check_shards() == []
    with override_settings(ACTIVE_USERS_REDIS_SHARDS=1):
        assert check_shards() == []


@pytest.mark.django_db
def test_the_migrations_describe_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    """A site that upgrades gets every schema change from ``migrate``: ``makemigrations``
    finds nothing left to write."""
    call_command("makemigrations", "active_users", check=True, dry_run=True)
    assert "No changes detected" in capsys.readouterr().out


@pytest.mark.django_db
def test_the_live_entries_have_the_touched_indexes_their_queries_read() -> None:
    """Every flushed row moves each index on ``touched``: a database has only those its
    counts and pages read (migration 0008). PostgreSQL counts by a partial index per kind;
    SQLite, MySQL and MariaDB by ``(kind, touched, id)``."""
    from django.db import connection

    from active_users.models import ActiveEntry

    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, ActiveEntry._meta.db_table)
    touched = sorted(
        name for name, about in found.items() if about["index"] and "touched" in about["columns"]
    )
    expected = ["active_users_live_idx"]
    if connection.vendor == "postgresql":
        expected += [
            "active_users_distinct_idx",
            "active_users_entry_idx",
            "active_users_visitor_idx",
        ]
    assert touched == sorted(expected)
