"""Who may see data about users: the one place every view, the dashboard, the sockets and
the admin ask.

- :func:`is_staff_user` / :func:`is_staff`: the dashboard, its JSON, its socket and the
  package's admin pages (active staff users, always).
- :func:`has_api_permission`: the JSON API and the django-active-users view, as
  ``ACTIVE_USERS_API_PERMISSION`` says.
- Presence rooms: ``access.py`` (signed room tokens and ``ACTIVE_USERS_PRESENCE_AUTHORIZE``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from active_users.conf import conf

if TYPE_CHECKING:
    from django.http import HttpRequest

NAMED = ("staff", "authenticated", "public")


def is_staff_user(user: Any) -> bool:
    """An active staff user (``user`` may be None or anonymous)."""
    return bool(user is not None and user.is_active and user.is_staff)


def is_staff(request: HttpRequest) -> bool:
    """Whether ``request`` comes from an active staff user."""
    return is_staff_user(getattr(request, "user", None))


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
        return is_staff_user(user)
    return bool(conf.import_callable(rule)(request))
