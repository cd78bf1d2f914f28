"""The demo site: SQLite and the database backend; set REDIS_URL to track on Redis."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "demo-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
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
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

ACTIVE_USERS_TRACK_ANONYMOUS = True
ACTIVE_USERS_EXCLUDE_URL_PATTERNS = [r"^/static/", r"^/favicon\.ico$"]
# Demo only: everyone may see who is active. The package's default is "staff".
ACTIVE_USERS_API_PERMISSION = "public"

if os.environ.get("REDIS_URL"):
    ACTIVE_USERS_BACKEND = "redis"
    ACTIVE_USERS_REDIS_URL = os.environ["REDIS_URL"]
    ACTIVE_USERS_KEY_PREFIX = "active_users_demo"
else:
    ACTIVE_USERS_BACKEND = "database"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"active_users": {"handlers": ["console"], "level": "INFO"}},
}
