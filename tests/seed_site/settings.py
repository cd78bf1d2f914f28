"""A site set up exactly as django-active-users' README says: the package is *not* in
INSTALLED_APPS, the default cache is django-redis, the middleware and the URLs are added."""

import os

SECRET_KEY = "seed-site"
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "active_users.middleware.ActiveUsersSessionMiddleware",
)
ROOT_URLCONF = "tests.seed_site.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["SEED_REDIS_URL"],
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    }
}
ACTIVE_USERS_KEY_PREFIX = os.environ["SEED_PREFIX"]
