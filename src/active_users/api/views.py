"""JSON views: django-active-users' ``active-users-info/`` and the versioned ``v1/`` API.

Every view is guarded by ``ACTIVE_USERS_API_PERMISSION`` (403 otherwise), answers 503 when
the store does not answer and 400 for a bad parameter, each with ``{"error": "…"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from active_users.api import (
    ActiveUsersPage,
    get_active_counts,
    get_active_users,
    get_active_users_page,
)
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.permissions import has_api_permission

UNICODE = {"ensure_ascii": False}
View = Callable[[HttpRequest], JsonResponse]


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _json(data: dict[str, Any]) -> JsonResponse:
    return JsonResponse(data, json_dumps_params=UNICODE)


def api_view(view: View) -> View:
    """GET only, never cached, permission checked, store and parameter errors as JSON."""

    @never_cache
    @require_GET
    @wraps(view)
    def wrapped(request: HttpRequest) -> JsonResponse:
        if not has_api_permission(request):
            return _error(403, "You do not have permission to see active users.")
        try:
            return view(request)
        except StoreUnavailable:
            return _error(503, "The active users store is not answering; try again shortly.")
        except ValueError as exc:
            field = "cursor" if "cursor" in str(exc) else "limit"
            return _error(400, f"{field}: {exc}.")

    return wrapped


def _page(request: HttpRequest, default: int | None = None) -> ActiveUsersPage | None:
    """The page that ``?limit=`` and ``&cursor=`` ask for (None without a limit)."""
    limit = request.GET.get("limit", default)
    if limit is None:
        return None
    if not str(limit).isdigit():
        raise ValueError("must be an integer from 1 to 1000 (limit)")
    page = get_active_users_page(int(limit), request.GET.get("cursor") or None)
    for user in page.users:
        user["last_active"] = user["last_active"].isoformat()
    return page


@api_view
def active_users_info_view(request: HttpRequest) -> JsonResponse:
    """``{"data": [...], "count": N}``, as django-active-users serves it.

    With ``?limit=N`` (and ``&cursor=…`` from the previous answer) one page is served:
    ``count`` is then the number of all active entries and ``next`` the cursor of the
    next page.
    """
    page = _page(request)
    if page is None:
        data = get_active_users()
        return _json({"data": data, "count": len(data)})
    count = get_active_counts().entries
    return _json({"data": page.users, "count": count, "next": page.next_cursor})


@api_view
def counts_v1(request: HttpRequest) -> JsonResponse:
    """``GET v1/counts/`` → ``{"entries", "users", "visitors", "key_expire", "time"}``."""
    counts = get_active_counts()
    return _json({
        "entries": counts.entries,
        "users": counts.users,
        "visitors": counts.visitors,
        "key_expire": conf.KEY_EXPIRE,
        "time": datetime.now(timezone.utc).isoformat(),
    })  # fmt: skip


@api_view
def users_v1(request: HttpRequest) -> JsonResponse:
    """``GET v1/users/?limit=100&cursor=…`` → ``{"users": [...], "next": cursor or null}``;
    each user is the entry's fields plus ``last_active`` (ISO 8601), newest first."""
    page = _page(request, default=100)
    assert page is not None
    return _json({"users": page.users, "next": page.next_cursor})
