"""The demo site: SQLite and the database backend; set REDIS_URL to track on Redis.

Presence ("N here now") needs a Redis for its rooms and the Channels layer: REDIS_URL's, or
the throwaway redis-server that the ``demo`` command starts and passes as
DEMO_PRESENCE_REDIS_URL. Served by uvicorn (``demo/asgi.py``): pages and WebSockets.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "demo-only-not-secret"
DEBUG = True
# Demo only: any host, so that 0.0.0.0:8000 answers a phone on the LAN. Never in production.
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "active_users",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "active_users.middleware.ActiveUsersSessionMiddleware",
]

ROOT_URLCONF = "demo.urls"
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE", BASE_DIR / "db.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
STATIC_URL = "static/"
# Demo only: a fast hash, so that the simulated users' log-ins do not hold the server up.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

ACTIVE_USERS_TRACK_ANONYMOUS = True
ACTIVE_USERS_EXCLUDE_URL_PATTERNS = [r"^/static/", r"^/favicon\.ico$"]
# Demo only: everyone may see who is active. The package's default is "staff".
ACTIVE_USERS_API_PERMISSION = "public"

# Demo only: every simulated browser posts its page views from 127.0.0.1.
ACTIVE_USERS_ACTIVITY_RATE_LIMIT = "6000/m"
# Anonymous visitors see "N here now" too (the tag gives them a session for their token).
ACTIVE_USERS_PRESENCE_ANONYMOUS = True

ACTIVE_USERS_BACKEND = "redis" if os.environ.get("REDIS_URL") else "database"
PRESENCE_REDIS_URL = os.environ.get("REDIS_URL") or os.environ.get("DEMO_PRESENCE_REDIS_URL")
DEMO_PRESENCE = bool(PRESENCE_REDIS_URL)
if PRESENCE_REDIS_URL:
    ACTIVE_USERS_REDIS_URL = PRESENCE_REDIS_URL
    ACTIVE_USERS_KEY_PREFIX = "active_users_demo"
    # The demo is one server process, so its sockets meet in memory. A fleet uses
    # channels_redis (README, "Presence"); its blocking read can outlive a server's graceful
    # shutdown, which a demo stopped with Ctrl-C would show as an error.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "active_users": {"handlers": ["console"], "level": "INFO"},
        "demo": {"handlers": ["console"], "level": "INFO"},
    },
}
