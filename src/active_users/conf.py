"""Settings of the package, read from ``django.conf.settings`` on every access.

Nothing is copied at import time, so ``override_settings`` works everywhere and the
defaults live here, never in the project's settings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from active_users.keys import AbstractActiveUserEntry

# Substrings of user agents that announce a crawler, a monitor or a link preview.
DEFAULT_BOT_PATTERN = (
    r"bot\b|bot/|spider|crawl|slurp|facebookexternalhit|embedly|pingdom|uptimerobot|"
    r"lighthouse|bingpreview|scrapy|curl/|wget/"
)


BUILTIN_EVENTS = frozenset({"pageview", "heartbeat", "hidden", "visible"})
RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"\s*([0-9]+)\s*(?:/\s*([a-zA-Z]*)\s*)?")
_RATE_WORDS = {"sec": "s", "second": "s", "min": "m", "minute": "m", "hour": "h", "day": "d"}


@functools.lru_cache(maxsize=8)
def parse_rate(value: str) -> tuple[int, int]:
    """``(requests, seconds)`` from ``"120/m"`` (``s``, ``m``, ``h``, ``d``, or the words:
    ``"120/minute"``; no unit is per minute). ValueError for anything else."""
    match = _RATE.fullmatch(value) if isinstance(value, str) else None
    unit = (match.group(2) or "m").lower() if match else ""
    if len(unit) > 1:
        unit = _RATE_WORDS.get(unit.removesuffix("s"), "")
    if match is None or unit not in RATE_UNITS or int(match.group(1)) == 0:
        raise ValueError(f'{value!r} is not a rate such as "120/m" (N/s, N/m, N/h or N/d, N ≥ 1)')
    return int(match.group(1)), RATE_UNITS[unit]


@functools.lru_cache(maxsize=16)
def _import(path: str) -> Any:
    return import_string(path)


@functools.lru_cache(maxsize=16)
def _compile_any(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))


class Settings:
    """Typed view of the ``ACTIVE_USERS_*`` settings; see the README for each one."""

    def _get(self, name: str, default: Any) -> Any:
        return getattr(settings, f"ACTIVE_USERS_{name}", default)

    @property
    def KEY_EXPIRE(self) -> int:
        return int(self._get("KEY_EXPIRE", 20))

    @property
    def KEY_CLASS(self) -> type[AbstractActiveUserEntry]:
        value = self._get("KEY_CLASS", "active_users.keys.ActiveUserEntry")
        found: type[AbstractActiveUserEntry] = _import(value) if isinstance(value, str) else value
        return found

    @property
    def EXCLUDE_URL_PATTERNS(self) -> Sequence[str]:
        return tuple(self._get("EXCLUDE_URL_PATTERNS", ()) or ())

    @property
    def exclude_url_regex(self) -> re.Pattern[str] | None:
        """All excluded URL patterns as one compiled regex, compiled once per value."""
        return _compile_any(tuple(self.EXCLUDE_URL_PATTERNS))

    @property
    def TOUCH_INTERVAL(self) -> float:
        value = self._get("TOUCH_INTERVAL", None)
        return self.KEY_EXPIRE / 4 if value is None else float(value)

    @property
    def FLUSH_INTERVAL(self) -> float:
        value = self._get("FLUSH_INTERVAL", None)
        if value is not None:
            return float(value)
        # A write is a burst of work for the store, and a request that meets one waits:
        # small writes often. But each write to SQLite is a commit that rewrites whole pages
        # of the file, so there fewer, larger ones cost less.
        from active_users.backends import writes_to_sqlite

        return 1.0 if writes_to_sqlite() else 0.25

    @property
    def refresh_interval(self) -> float:
        """How often a process refreshes one presence: ``TOUCH_INTERVAL``, and at least once
        per last-seen interval, so that last seen follows requests whatever ``KEY_EXPIRE``."""
        if self.LAST_SEEN:
            return min(self.TOUCH_INTERVAL, self.LAST_SEEN_INTERVAL)
        return self.TOUCH_INTERVAL

    @property
    def refresh_step(self) -> float:
        """A flush moves a stored time forward only by this much or more: a presence that
        another process wrote moments ago is left as it is, so a fleet writes each active
        person about twice per refresh interval, not once per process. Half the refresh
        interval, less when ``KEY_EXPIRE`` leaves less room, so that a presence refreshed
        all along never lapses (it is stored at most a refresh interval, this step and a
        flush interval behind its last request)."""
        refresh = self.refresh_interval
        room = (self.KEY_EXPIRE - refresh - self.FLUSH_INTERVAL) / 2
        return max(0.0, min(refresh / 2, room))

    @property
    def BUFFER_SIZE(self) -> int:
        return int(self._get("BUFFER_SIZE", 50_000))

    @property
    def BACKEND(self) -> str | None:
        return self._get("BACKEND", None)  # type: ignore[no-any-return]

    @property
    def REDIS_URL(self) -> str | None:
        return self._get("REDIS_URL", None)  # type: ignore[no-any-return]

    @property
    def REDIS_TIMEOUT(self) -> float:
        return float(self._get("REDIS_TIMEOUT", 0.25))

    @property
    def KEY_PREFIX(self) -> str:
        return str(self._get("KEY_PREFIX", "active_users"))

    @property
    def DATABASE(self) -> str:
        return str(self._get("DATABASE", "default"))

    @property
    def API_PERMISSION(self) -> str | Callable[..., bool]:
        return self._get("API_PERMISSION", "staff")  # type: ignore[no-any-return]

    @property
    def TRACK_ANONYMOUS(self) -> bool:
        return bool(self._get("TRACK_ANONYMOUS", False))

    @property
    def EXCLUDE_USERS(self) -> Sequence[str | Callable[..., bool]]:
        value = self._get("EXCLUDE_USERS", ())
        return (value,) if isinstance(value, str) or callable(value) else tuple(value)

    @property
    def EXCLUDE_BOTS(self) -> bool:
        return bool(self._get("EXCLUDE_BOTS", True))

    @property
    def bot_regex(self) -> re.Pattern[str] | None:
        if not self.EXCLUDE_BOTS:
            return None
        pattern = self._get("BOT_USER_AGENT_PATTERN", DEFAULT_BOT_PATTERN)
        return _compile_any((f"(?i:{pattern})",))

    @property
    def TRUSTED_PROXIES(self) -> Sequence[str]:
        return tuple(self._get("TRUSTED_PROXIES", ()))

    @property
    def STORE_IP(self) -> bool:
        return bool(self._get("STORE_IP", True))

    @property
    def ANONYMIZE_IP(self) -> bool:
        return bool(self._get("ANONYMIZE_IP", False))

    @property
    def REDIS_CLUSTER(self) -> bool:
        return bool(self._get("REDIS_CLUSTER", False))

    @property
    def REDIS_SHARDS(self) -> int:
        """Shards of the Redis backend's live sets (``backends/shards.py``); 1 is unsharded."""
        return int(self._get("REDIS_SHARDS", 1))

    @property
    def FAILURE_COOLDOWN(self) -> float:
        return float(self._get("FAILURE_COOLDOWN", 5.0))

    @property
    def LAST_SEEN(self) -> bool:
        """Keep last-seen times in the database (needs the app installed)."""
        from django.apps import apps

        return bool(self._get("LAST_SEEN", True)) and apps.is_installed("active_users")

    @property
    def LAST_SEEN_INTERVAL(self) -> float:
        return float(self._get("LAST_SEEN_INTERVAL", 60))

    @property
    def ONLINE_AFTER(self) -> float:
        return float(self._get("ONLINE_AFTER", 300))

    @property
    def IDLE_AFTER(self) -> float:
        return float(self._get("IDLE_AFTER", 900))

    @property
    def ADMIN(self) -> bool:
        return bool(self._get("ADMIN", True))

    # History: per-minute samples and daily/monthly uniques (``history.py``)
    @property
    def HISTORY(self) -> bool:
        return bool(self._get("HISTORY", True))

    @property
    def HISTORY_MINUTE_RETENTION(self) -> int:
        """Hours of per-minute samples kept (older minutes live on as hourly peaks)."""
        return int(self._get("HISTORY_MINUTE_RETENTION", 48))

    @property
    def HISTORY_DAY_RETENTION(self) -> int:
        """Days of hourly peaks and daily and monthly uniques kept."""
        return int(self._get("HISTORY_DAY_RETENTION", 400))

    @property
    def DASHBOARD_REFRESH(self) -> float:
        """Seconds between the admin dashboard's refreshes."""
        return float(self._get("DASHBOARD_REFRESH", 5))

    # Presence in rooms over WebSockets (``presence.py``, ``consumers.py``)
    @property
    def PRESENCE_HEARTBEAT(self) -> float:
        """Seconds between a client's heartbeats."""
        return float(self._get("PRESENCE_HEARTBEAT", 20))

    @property
    def PRESENCE_TIMEOUT(self) -> float:
        """Seconds without a heartbeat after which a connection is dropped."""
        value = self._get("PRESENCE_TIMEOUT", None)
        return 3 * self.PRESENCE_HEARTBEAT if value is None else float(value)

    @property
    def PRESENCE_GRACE(self) -> float:
        """Seconds a person stays after their last connection closed (a reload is not a
        leave and a join)."""
        return float(self._get("PRESENCE_GRACE", 5))

    @property
    def PRESENCE_LIST_LIMIT(self) -> int:
        """Rooms with more people get a throttled count instead of join and leave events."""
        return int(self._get("PRESENCE_LIST_LIMIT", 100))

    @property
    def PRESENCE_COUNT_INTERVAL(self) -> float:
        """At most one count event per room per this many seconds, fleet-wide."""
        return float(self._get("PRESENCE_COUNT_INTERVAL", 2))

    @property
    def PRESENCE_ANONYMOUS(self) -> bool:
        """Whether anonymous sessions may join rooms at all (they are counted, not named)."""
        return bool(self._get("PRESENCE_ANONYMOUS", False))

    @property
    def PRESENCE_SHOW_NAMES_TO_ANONYMOUS(self) -> bool:
        """Whether anonymous connections are told who is in a room, or only how many."""
        return bool(self._get("PRESENCE_SHOW_NAMES_TO_ANONYMOUS", False))

    @property
    def PRESENCE_TOKEN_MAX_AGE(self) -> float:
        """Seconds a signed room token opens its room (open connections renew theirs)."""
        return float(self._get("PRESENCE_TOKEN_MAX_AGE", 300))

    @property
    def PRESENCE_AUTHORIZE(self) -> Callable[[Any, str], bool] | None:
        """``(user, room) -> bool``, asked before a token is signed or renewed and for
        connections without a token; None when not set."""
        value = self._get("PRESENCE_AUTHORIZE", None)
        return None if value is None else self.import_callable(value)

    @property
    def PRESENCE_URL(self) -> str:
        """The path WebSocket connections to rooms are routed under."""
        return str(self._get("PRESENCE_URL", "ws/presence/")).strip("/") + "/"

    @property
    def users_retention(self) -> float:
        """How long the live store remembers a user's last touch: long enough to tell
        online, idle and offline apart, and to outlive a missed last-seen flush."""
        return max(self.KEY_EXPIRE, self.IDLE_AFTER, 3 * self.LAST_SEEN_INTERVAL)

    # Client-side activity (the tracker script and the log endpoint)
    @property
    def ACTIVITY_EVENTS(self) -> frozenset[str]:
        """Accepted event names: the built-in ones and ``ACTIVE_USERS_ACTIVITY_EVENTS``."""
        return BUILTIN_EVENTS | frozenset(self._get("ACTIVITY_EVENTS", ()))

    @property
    def ACTIVITY_MAX_SKEW(self) -> float:
        return float(self._get("ACTIVITY_MAX_SKEW", 24 * 3600))

    @property
    def ACTIVITY_MAX_BODY(self) -> int:
        return int(self._get("ACTIVITY_MAX_BODY", 16 * 1024))

    @property
    def ACTIVITY_MAX_EVENTS(self) -> int:
        return int(self._get("ACTIVITY_MAX_EVENTS", 20))

    @property
    def ACTIVITY_RATE_LIMIT(self) -> tuple[int, int] | None:
        """``(requests, seconds)`` from ``"120/m"``-style text, or None for no limit."""
        value = self._get("ACTIVITY_RATE_LIMIT", "120/m")
        if value is None or value == "":
            return None
        try:
            return parse_rate(value)
        except (TypeError, ValueError) as exc:  # check active_users.E007 says so at start-up
            raise ImproperlyConfigured(f"ACTIVE_USERS_ACTIVITY_RATE_LIMIT: {exc}") from None

    @property
    def ACTIVITY_RETENTION(self) -> int | None:
        value = self._get("ACTIVITY_RETENTION", 90)
        return None if value is None else int(value)

    @property
    def ACTIVITY_HEARTBEAT(self) -> float:
        return float(self._get("ACTIVITY_HEARTBEAT", 30))

    @property
    def PROMETHEUS(self) -> bool:
        return bool(self._get("PROMETHEUS", False))

    @property
    def CACHE(self) -> str:
        return str(self._get("CACHE", "default"))

    def import_callable(self, value: str | Callable[..., Any]) -> Callable[..., Any]:
        found: Callable[..., Any] = _import(value) if isinstance(value, str) else value
        return found


conf = Settings()
