from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from active_users import api
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.last_seen import last_seen_many, status_of
from active_users.permissions import has_api_permission


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "backend": settings.ACTIVE_USERS_BACKEND,
        "key_expire": conf.KEY_EXPIRE,
        "may_see_users": has_api_permission(request),
        "presence": settings.DEMO_PRESENCE,
    }
    try:
        context["counts"] = api.get_active_counts()
        if context["may_see_users"]:
            context["page"] = api.get_active_users_page(limit=100)
    except StoreUnavailable:
        context["store_down"] = True
    if context["may_see_users"]:
        users = list(get_user_model().objects.order_by("username")[:50])
        seen = last_seen_many(users)
        context["people"] = [
            {"user": u, "last_seen": seen[str(u.pk)], "status": status_of(seen[str(u.pk)])}
            for u in users
        ]
    return render(request, "demo/home.html", context)


def article(request: HttpRequest, number: int) -> HttpResponse:
    return render(
        request, "demo/article.html", {"number": number, "presence": settings.DEMO_PRESENCE}
    )
