"""Settings of the test suite.

``DATABASE_URL`` picks the database (``postgres://…``, ``mysql://…``); SQLite otherwise.
``ACTIVE_USERS_TEST_USE_TZ=0`` runs the suite with ``USE_TZ = False`` in a time zone far from
UTC (``Pacific/Kiritimati``, UTC+14), where naive local times and UTC disagree by 14 hours.
The tracking backend is chosen per test by the ``backend`` fixture.
"""

import os

import dj_database_url

SECRET_KEY = "tests-secret-key-not-for-production"
DEBUG = False
USE_TZ = os.environ.get("ACTIVE_USERS_TEST_USE_TZ", "1").strip().lower() not in ("0", "false", "no")
TIME_ZONE = "UTC" if USE_TZ else "Pacific/Kiritimati"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "active_users",
    "tests",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "active_users.middleware.ActiveUsersSessionMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_url = os.environ.get("DATABASE_URL")
if _url:
    if _url.startswith(("mysql", "mariadb")):
        import pymysql

        pymysql.install_as_MySQLdb()
        _url = "mysql" + _url[_url.index(":") :]
    DATABASES = {"default": dj_database_url.parse(_url)}
    if DATABASES["default"]["ENGINE"].endswith("mysql"):
        DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
        DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

STATIC_URL = "/static/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ]
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

ACTIVE_USERS_BACKEND = "database"
# Tests flush last-seen times themselves; the background flush would race their transactions.
ACTIVE_USERS_LAST_SEEN_INTERVAL = 3600

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"active_users": {"level": "INFO"}},
}
