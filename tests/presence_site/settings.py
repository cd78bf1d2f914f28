"""The test project served by uvicorn for the presence tests; Redis, key prefix, database,
timings, token max age, anonymous presence and the authorize hook from the environment
(PRESENCE_*)."""

import os

import dj_database_url

from tests.settings import *  # noqa: F403

DATABASES = {"default": dj_database_url.parse(os.environ["PRESENCE_DATABASE_URL"])}
DATABASES["default"]["OPTIONS"] = {"timeout": 20}
ROOT_URLCONF = "tests.presence_site.urls"
STATIC_URL = "/static/"
_redis = os.environ["PRESENCE_REDIS_URL"]
ACTIVE_USERS_BACKEND = "redis"
ACTIVE_USERS_REDIS_URL = _redis
ACTIVE_USERS_KEY_PREFIX = os.environ["PRESENCE_PREFIX"]
ACTIVE_USERS_LAST_SEEN_INTERVAL = 3600
# Nobody stops being an active user while the module runs: a count pushed to the dashboard
# goes up by one exactly when a newcomer arrives.
ACTIVE_USERS_KEY_EXPIRE = 600
ACTIVE_USERS_PRESENCE_HEARTBEAT = float(os.environ.get("PRESENCE_HEARTBEAT", "0.5"))
ACTIVE_USERS_PRESENCE_TIMEOUT = float(os.environ.get("PRESENCE_TIMEOUT", "2"))
ACTIVE_USERS_PRESENCE_GRACE = float(os.environ.get("PRESENCE_GRACE", "1"))
ACTIVE_USERS_PRESENCE_LIST_LIMIT = 50
ACTIVE_USERS_PRESENCE_TOKEN_MAX_AGE = float(os.environ.get("PRESENCE_TOKEN_MAX_AGE", "300"))
ACTIVE_USERS_PRESENCE_ANONYMOUS = os.environ.get("PRESENCE_ANONYMOUS") == "1"
if os.environ.get("PRESENCE_AUTHORIZE") == "1":
    ACTIVE_USERS_PRESENCE_AUTHORIZE = "tests.presence_site.urls.authorize"
ACTIVE_USERS_PRESENCE_COUNT_INTERVAL = 1
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # A thousand connections closing at once take more than redis-py's default 100
        # connections; redis-py 8's 5 s default socket timeout cuts channels_redis' 5 s
        # blocking BZPOPMIN short (channels_redis issue 422): give it more.
        "CONFIG": {
            "hosts": [{"address": _redis, "max_connections": 2000, "socket_timeout": 10}],
            "prefix": os.environ["PRESENCE_PREFIX"] + ":layer",
        },
    }
}
