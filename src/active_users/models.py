from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.IntegerChoices):
    # An integer, not a boolean: ``kind = 0`` is an index equality everywhere, while
    # ``NOT anonymous`` is not on SQLite.
    ENTRY = 0, _("user session")
    VISITOR = 1, _("anonymous visitor")
    USER = 2, _("user")


class ActiveEntry(models.Model):
    """A row of the database backend: an active entry (a user's session), an anonymous
    visitor, or a user (one row per user, for counting distinct users by index).

    Rows are upserted on ``key`` and counted by ``touched``; rows older than
    ``ACTIVE_USERS_KEY_EXPIRE`` are never counted and are deleted by
    ``manage.py active_users_clear_expired``.
    """

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(_("key"), max_length=40, unique=True)
    kind = models.PositiveSmallIntegerField(_("kind"), choices=Kind.choices, default=Kind.ENTRY)
    user_key = models.CharField(_("user id"), max_length=255, blank=True)
    data = models.TextField(_("data"))
    touched = models.DateTimeField(_("last active"))

    class Meta:
        verbose_name = _("active entry")
        verbose_name_plural = _("active entries")
        indexes = [
            models.Index(fields=["kind", "touched", "id"], name="active_users_live_idx"),
        ]

    def __str__(self) -> str:
        return self.data
