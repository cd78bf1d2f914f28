from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from active_users.backends import backend_path, get_backend
from active_users.checks import check_settings


def ids(**overrides: object) -> list[str]:
    with override_settings(**overrides):
        return [message.id for message in check_settings()]  # type: ignore[misc]


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
        ("ACTIVE_USERS_PRESENCE_AUTHORIZE", "nowhere.may_join", "active_users.E007"),
    ],
)
def test_a_bad_setting_is_reported_with_its_id(setting: str, value: object, check_id: str) -> None:
    assert check_id in ids(**{setting: value})


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
