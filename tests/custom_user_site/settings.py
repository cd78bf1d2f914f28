"""A site whose user model has no ``username`` and a text primary key with a colon."""

SECRET_KEY = "custom-user-site"
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "tests.custom_user_site",
    "active_users",
]
AUTH_USER_MODEL = "custom_user_site.EmailUser"
MIGRATION_MODULES = {"custom_user_site": None}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "active_users.middleware.ActiveUsersSessionMiddleware",
]
ROOT_URLCONF = "tests.seed_site.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ACTIVE_USERS_BACKEND = "database"
