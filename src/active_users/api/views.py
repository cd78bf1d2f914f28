"""JSON views: django-active-users' ``active-users-info/`` and the versioned ``v1/`` API.

Every view is guarded by ``ACTIVE_USERS_API_PERMISSION`` (403 otherwise), answers 503 when
the store does not answer, 400 for a bad parameter and 405 for a method other than GET and
HEAD, each with the package's error shape ``{"error": "…", "field": "…" or null}``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from active_users import clock
from active_users.api import (
    ActiveUsersPage,
    get_active_counts,
    get_active_users,
    get_active_users_page,
)
from active_users.conf import conf
from active_users.exceptions import BadRequest
from active_users.faults import json_guard
from active_users.history import RANGES, get_history, get_uniques
from active_users.inputs import error_response, json_errors
from active_users.permissions import has_api_permission

UNICODE = {"ensure_ascii": False}
View = Callable[[HttpRequest], HttpResponse]


def _digits(value: str) -> bool:
    """ASCII digits, few enough for ``int()`` (``"²".isdigit()`` is true too)."""
    return value.isascii() and value.isdigit() and len(value) <= 9


def int_parameter(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    value = request.GET.get(name)
    if value is None or value == "":
        return default
    if not _digits(value) or not low <= int(value) <= high:
        raise BadRequest(name, f"must be an integer from {low} to {high}")
    return int(value)


def json_response(data: dict[str, Any]) -> JsonResponse:
    return JsonResponse(data, json_dumps_params=UNICODE)


def api_view(view: View, allowed: Callable[[HttpRequest], bool] = has_api_permission) -> View:
    """GET and HEAD only, never cached, permission checked, store and parameter errors as
    JSON. HEAD runs the view as GET does; the server drops the body. No CSRF check: the
    views change nothing, and refuse every other method before reading a body."""

    @csrf_exempt
    @never_cache
    @wraps(view)
    @json_guard  # the store, the database (the permission's user too) or a cache failing
    @json_errors
    def wrapped(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            message = f"method: {request.method} is not allowed; use GET"
            response = error_response(405, message, "method")
            response["Allow"] = "GET, HEAD"
            return response
        if not allowed(request):
            return error_response(403, "You do not have permission to see active users.")
        return view(request)

    return wrapped


def _page(request: HttpRequest, default: int | None = None) -> ActiveUsersPage | None:
    """The page that ``?limit=`` and ``&cursor=`` ask for (None without a limit)."""
    limit = request.GET.get("limit", default)
    if limit is None:
        return None
    if not _digits(str(limit)):
        raise BadRequest("limit", "must be an integer from 1 to 1000")
    page = get_active_users_page(int(limit), request.GET.get("cursor") or None)
    for user in page.users:
        user["last_active"] = clock.iso(user["last_active"])
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
        return json_response({"data": data, "count": len(data)})
    count = get_active_counts().entries
    return json_response({"data": page.users, "count": count, "next": page.next_cursor})


def counts(request: HttpRequest) -> JsonResponse:
    """``GET v1/counts/`` → ``{"entries", "users", "visitors", "key_expire", "time"}``."""
    counts = get_active_counts()
    return json_response({
        "entries": counts.entries,
        "users": counts.users,
        "visitors": counts.visitors,
        "key_expire": conf.KEY_EXPIRE,
        "time": clock.iso(clock.now()),
    })  # fmt: skip


def users(request: HttpRequest) -> JsonResponse:
    """``GET v1/users/?limit=100&cursor=…`` → ``{"users": [...], "next": cursor or null}``;
    each user is the entry's fields plus ``last_active`` (ISO 8601), newest first."""
    page = _page(request, default=100)
    assert page is not None
    return json_response({"users": page.users, "next": page.next_cursor})


def history(request: HttpRequest) -> JsonResponse:
    """``GET v1/history/?range=24h`` (``1h``, ``24h``, ``7d``, ``30d``) →
    ``{"range", "step", "points": [{"time", "entries", "users", "visitors"}, ...]}``,
    oldest first, one point per ``step`` seconds."""
    name = request.GET.get("range") or "24h"
    if name not in RANGES:
        raise BadRequest("range", f"must be one of {', '.join(RANGES)}")
    points = get_history(name)
    return json_response({
        "range": name,
        "step": RANGES[name][1],
        "points": [point.as_json() for point in points],
    })  # fmt: skip


def uniques(request: HttpRequest) -> JsonResponse:
    """``GET v1/uniques/?days=30&months=12`` → ``{"today", "dau", "wau", "mau", "dau_mau",
    "dau_visitors", "wau_visitors", "mau_visitors", "days": [...], "months": [...]}``."""
    days = int_parameter(request, "days", 30, 0, 400)
    months = int_parameter(request, "months", 12, 0, 24)
    return json_response(get_uniques(days, months))


counts_v1 = api_view(counts)
users_v1 = api_view(users)
history_v1 = api_view(history)
uniques_v1 = api_view(uniques)
