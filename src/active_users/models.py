from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ActiveEntry(models.Model):
    """A live entry of the database backend: one row per active session entry or visitor.

    Rows are upserted on ``key`` and counted by ``touched``; rows older than
    ``ACTIVE_USERS_KEY_EXPIRE`` are never counted and are deleted by
    ``manage.py active_users_clear_expired``.
    """

    id = models.BigAutoField(primary_key=True)
    key = models.CharField(_("key"), max_length=40, unique=True)
    anonymous = models.BooleanField(_("anonymous"), default=False)
    user_key = models.CharField(_("user id"), max_length=255, blank=True)
    data = models.TextField(_("data"))
    touched = models.DateTimeField(_("last active"))

    class Meta:
        verbose_name = _("active entry")
        verbose_name_plural = _("active entries")
        indexes = [
            models.Index(fields=["anonymous", "touched", "id"], name="active_users_live_idx"),
        ]

    def __str__(self) -> str:
        return self.data
