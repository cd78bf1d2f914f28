"""The live dashboard in the admin: the page, and the JSON it refreshes itself from.

The page (``DashboardAdmin.changelist_view`` in ``admin.py``) is rendered once; its script
(``static/active_users/dashboard.js``) then polls the JSON views below, which the admin
serves under its own URLs for staff only (whatever ``ACTIVE_USERS_API_PERMISSION`` says):
counts, history and uniques are the public ``v1`` views; the users table and top pages add
what only staff may see (IP addresses, current paths).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Count, F
from django.db.models.functions import Lower
from django.http import HttpRequest, JsonResponse

from active_users import clock
from active_users.api import get_active_users_page
from active_users.api.views import int_parameter, json_response
from active_users.conf import conf
from active_users.exceptions import BadRequest
from active_users.last_seen import catch_up, last_seen_many, status_of

MAX_SEARCH = 150
SEARCH_RESULTS = 50
TOP_PAGES = 10


def _activity_model() -> Any:
    return apps.get_model("active_users", "Activity") if apps.is_installed("active_users") else None


def _current_paths(user_ids: list[str]) -> dict[str, str]:
    """Each user's latest logged path within ``ONLINE_AFTER`` seconds (the activity log)."""
    Activity = _activity_model()
    if Activity is None or not user_ids:
        return {}
    pk_field = get_user_model()._meta.pk
    keys = []
    for user_id in user_ids:
        try:
            keys.append(pk_field.to_python(user_id))
        except Exception:
            continue
    since, until = _window()
    rows = (
        Activity.objects.using(conf.DATABASE)
        .filter(user_id__in=keys, date__gte=since, date__lte=until)
        .order_by("-date")
        .values_list("user_id", "path")
    )
    found: dict[str, str] = {}
    for pk, path in rows[: 20 * len(keys)]:
        found.setdefault(str(pk), path)
    return found


def _window() -> tuple[datetime, datetime]:
    """The last ``ONLINE_AFTER`` seconds, bounded by now: rows dated ahead of the server's
    clock (written before dates were clamped, or by a clock running ahead) are not "now"."""
    return clock.ago(conf.ONLINE_AFTER), clock.now()


def _iso(moment: datetime | None) -> str | None:
    return clock.iso(moment) if moment else None


def users(request: HttpRequest) -> JsonResponse:
    """``?limit=&cursor=``: a page of active entries, newest first; ``?search=text``: up to
    50 users whose username contains it, active or not, with their last seen."""
    search = request.GET.get("search", "").strip()
    if len(search) > MAX_SEARCH:
        raise BadRequest("search", f"must be at most {MAX_SEARCH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in search):
        raise BadRequest("search", "contains control characters")
    if search:
        return json_response({"users": _search(search), "next": None, "search": search})
    limit = int_parameter(request, "limit", 25, 1, 1000)
    page = get_active_users_page(limit, request.GET.get("cursor") or None)
    paths = _current_paths([u.get("user_id", "") for u in page.users])
    rows = [
        {
            "user_id": entry.get("user_id", ""),
            "username": entry.get("username") or entry.get("user_id", ""),
            "ip": entry.get("ip", ""),
            "last_seen": clock.iso(entry["last_active"]),
            "status": status_of(entry["last_active"]),
            "path": paths.get(entry.get("user_id", ""), ""),
        }
        for entry in page.users
    ]
    return json_response({"users": rows, "next": page.next_cursor, "search": ""})


def _search(text: str) -> list[dict[str, Any]]:
    User = get_user_model()
    field = User.USERNAME_FIELD
    # Lower() on both sides: icontains follows the column's collation on MySQL/MariaDB.
    found = User._default_manager.annotate(_name=Lower(field)).filter(_name__contains=text.lower())
    if conf.LAST_SEEN:
        catch_up()  # the 50 most recently seen, counting those seen since the last flush
        found = found.annotate(_seen=F("active_users_last_seen__last_activity")).order_by(
            F("_seen").desc(nulls_last=True), field
        )
    else:
        found = found.order_by(field)
    people = list(found[:SEARCH_RESULTS])
    seen = last_seen_many(people)
    paths = _current_paths([str(p.pk) for p in people])
    rows = []
    for person in people:
        moment = seen.get(str(person.pk))
        rows.append({
            "user_id": str(person.pk),
            "username": str(getattr(person, field)),
            "ip": "",
            "last_seen": _iso(moment),
            "status": status_of(moment),
            "path": paths.get(str(person.pk), ""),
        })  # fmt: skip
    rows.sort(key=lambda r: r["last_seen"] or "", reverse=True)
    return rows


def pages(request: HttpRequest) -> JsonResponse:
    """The most viewed paths of the last ``ONLINE_AFTER`` seconds, by distinct sessions,
    from the activity log; ``{"enabled": false}`` without it."""
    Activity = _activity_model()
    if Activity is None:
        return json_response({"enabled": False, "pages": []})
    since, until = _window()
    rows = (
        Activity.objects.using(conf.DATABASE)
        .filter(date__gte=since, date__lte=until)
        .exclude(path="")
        .values("path")
        .annotate(people=Count("session", distinct=True), events=Count("id"))
        .order_by("-people", "-events", "path")[:TOP_PAGES]
    )
    return json_response({
        "enabled": True,
        "since_seconds": conf.ONLINE_AFTER,
        "pages": [{"path": r["path"], "people": r["people"], "events": r["events"]} for r in rows],
    })  # fmt: skip
