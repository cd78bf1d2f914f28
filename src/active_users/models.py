from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from active_users import clock
from active_users.conf import conf


class Kind(models.IntegerChoices):
    # An integer, not a boolean: ``kind = 0`` is an index equality everywhere, while
    # ``NOT anonymous`` is not on SQLite.
    ENTRY = 0, _("user session")
    VISITOR = 1, _("anonymous visitor")
    USER = 2, _("user")
    MARK = 3, _("bookkeeping")


class ActiveEntry(models.Model):
    """A row of the database backend: an active entry (a user's session), an anonymous
    visitor, or a user (one row per user, for counting distinct users by index).

    Rows are upserted on ``key`` and counted by ``touched``; rows older than
    ``ACTIVE_USERS_KEY_EXPIRE`` are never counted and are deleted by
    ``manage.py active_users_clear_expired``.
    """

    id = models.BigAutoField(primary_key=True)
    # Unique by a constraint, not ``unique=True``: on PostgreSQL the field option adds a
    # second index for ``LIKE`` (``varchar_pattern_ops``) that nothing here uses and every
    # refresh would update.
    key = models.CharField(_("key"), max_length=40)
    kind = models.PositiveSmallIntegerField(_("kind"), choices=Kind.choices, default=Kind.ENTRY)
    user_key = models.CharField(_("user id"), max_length=255, blank=True)
    data = models.TextField(_("data"))
    touched = models.DateTimeField(_("last active"))
    # The keyed hash of the entry's session key: logging out deletes the session's entries
    # by it, whatever the logout request looks like.
    session = models.CharField(_("session (hashed)"), max_length=32, blank=True, default="")

    class Meta:
        verbose_name = _("active entry")
        verbose_name_plural = _("active entries")
        indexes = [
            models.Index(fields=["kind", "touched", "id"], name="active_users_live_idx"),
            models.Index(fields=["user_key"], name="active_users_user_idx"),
            models.Index(fields=["session"], name="active_users_session_idx"),
        ]
        # On PostgreSQL, also a partial index on ``touched`` per kind (migrations 0004 and
        # 0008, outside the model): with every row active, ``kind = 0 AND touched > …``
        # selects half of the table, and PostgreSQL would rather scan it all than use the
        # index above.
        constraints = [models.UniqueConstraint(fields=["key"], name="active_users_key_unique")]

    def __str__(self) -> str:
        return self.data


class Resolution(models.IntegerChoices):
    MINUTE = 0, _("minute")
    HOUR = 1, _("hour")


class HistorySample(models.Model):
    """How many were active: a minute's sample, or an hour's peaks (database backend).

    One process of the fleet writes each minute's row; rows past
    ``ACTIVE_USERS_HISTORY_MINUTE_RETENTION`` hours (minutes) or
    ``ACTIVE_USERS_HISTORY_DAY_RETENTION`` days (hours) are deleted as new ones come.
    """

    resolution = models.PositiveSmallIntegerField(_("resolution"), choices=Resolution.choices)
    start = models.DateTimeField(_("start"))
    entries = models.PositiveIntegerField(_("user sessions"))
    users = models.PositiveIntegerField(_("users"))
    visitors = models.PositiveIntegerField(_("anonymous visitors"))

    class Meta:
        verbose_name = _("history sample")
        verbose_name_plural = _("history samples")
        constraints = [
            models.UniqueConstraint(
                fields=["resolution", "start"], name="active_users_sample_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} {self.users}"


class DailyUnique(models.Model):
    """That a user (or anonymous visitor) was active on a day, in ``TIME_ZONE`` (database
    backend): one row per day and person, so distinct counts over any days are exact."""

    day = models.DateField(_("day"))
    kind = models.PositiveSmallIntegerField(_("kind"), choices=Kind.choices)
    key = models.CharField(_("key (hashed)"), max_length=32)

    class Meta:
        verbose_name = _("daily unique")
        verbose_name_plural = _("daily uniques")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "day", "key"], name="active_users_unique_per_day"
            ),
        ]
        indexes = [models.Index(fields=["day"], name="active_users_unique_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.key}"


class LastSeen(models.Model):
    """When each user was last active: one row per user, written in batches at most once
    per ``ACTIVE_USERS_LAST_SEEN_INTERVAL`` seconds, never once per request."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="active_users_last_seen",
        verbose_name=_("user"),
    )
    last_activity = models.DateTimeField(_("last seen"), db_index=True)

    class Meta:
        verbose_name = _("last seen")
        verbose_name_plural = _("last seen")
        ordering = ["-last_activity"]

    def __str__(self) -> str:
        return f"{self.user} {self.last_activity:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def get_user_activities(
        cls, time_delta: timedelta = timedelta(minutes=15)
    ) -> models.QuerySet[LastSeen]:
        """Rows of users active within ``time_delta``, newest first (django-online-users).

        The rows are first brought up to date with the live store, so a user counts from
        their first request (see ``last_seen.catch_up``)."""
        from active_users.last_seen import catch_up

        catch_up()
        since = clock.ago(time_delta)
        return (
            cls.objects.using(conf.DATABASE)
            .filter(last_activity__gte=since)
            .order_by("-last_activity")
        )

    @classmethod
    def update_user_activity(cls, user: Any) -> None:
        """Record ``user`` as active now, as a request of theirs would (django-online-users'
        method, for views and tasks): counted, last seen, ``user_became_active``."""
        from active_users.tracking import record_user

        record_user(user)


class OnlineUserActivity(LastSeen):
    """django-online-users' model name: ``OnlineUserActivity.get_user_activities()``."""

    class Meta:
        proxy = True
        verbose_name = _("online user activity")
        verbose_name_plural = _("online user activities")


class Dashboard(LastSeen):
    """No data of its own: the admin's entry for the live dashboard (``admin.py``)."""

    class Meta:
        proxy = True
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboard")


class Activity(models.Model):
    """One client-side event sent by the tracker script (or any client) to ``log/``."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="active_users_activities",
        verbose_name=_("user"),
    )
    session = models.CharField(_("session (hashed)"), max_length=32, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    date = models.DateTimeField(_("date"), help_text=_("When the client says it happened."))
    received = models.DateTimeField(_("received"), auto_now_add=True)
    event = models.CharField(_("event"), max_length=32)
    path = models.CharField(_("path"), max_length=2000, blank=True)
    referer = models.CharField(_("referer"), max_length=2000, blank=True)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-date"]
        indexes = [
            models.Index(fields=["user", "date"], name="active_users_act_user_idx"),
            models.Index(fields=["date"], name="active_users_act_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.path}"


class SessionInfo(models.Model):
    """The user agent of a browser session that logged activity (django-djaffar's model)."""

    session = models.CharField(_("session (hashed)"), max_length=32, primary_key=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    created = models.DateTimeField(_("first seen"), auto_now_add=True)

    class Meta:
        verbose_name = _("browser session")
        verbose_name_plural = _("browser sessions")

    def __str__(self) -> str:
        return self.user_agent
