"""The test project served by gunicorn for load tests; the store and database from the
environment (LOAD_DATABASE_URL, LOAD_BACKEND, LOAD_REDIS_URL, LOAD_PREFIX)."""

import os

import dj_database_url

from tests.settings import *  # noqa: F403

_url = os.environ["LOAD_DATABASE_URL"]
if _url.startswith("mysql"):
    import pymysql

    pymysql.install_as_MySQLdb()
DATABASES = {"default": dj_database_url.parse(_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("mysql"):
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
ACTIVE_USERS_BACKEND = os.environ.get("LOAD_BACKEND", "redis")
ACTIVE_USERS_REDIS_URL = os.environ.get("LOAD_REDIS_URL")
ACTIVE_USERS_KEY_PREFIX = os.environ.get("LOAD_PREFIX", "load")
ACTIVE_USERS_TRACK_ANONYMOUS = True
ACTIVE_USERS_KEY_EXPIRE = 60
ACTIVE_USERS_LAST_SEEN_INTERVAL = 3600
