"""Who may read data about users: ``ACTIVE_USERS_API_PERMISSION``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from active_users.conf import conf

if TYPE_CHECKING:
    from django.http import HttpRequest

NAMED = ("staff", "authenticated", "public")


def has_api_permission(request: HttpRequest) -> bool:
    """``"staff"`` (default): active staff users; ``"authenticated"``: any logged-in user;
    ``"public"``: anyone; or a callable (or its dotted path) taking the request."""
    rule = conf.API_PERMISSION
    user = getattr(request, "user", None)
    if rule == "public":
        return True
    if rule == "authenticated":
        return bool(user is not None and user.is_authenticated)
    if rule == "staff":
        return bool(user is not None and user.is_active and user.is_staff)
    return bool(conf.import_callable(rule)(request))
