from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from active_users.api import get_active_users, get_active_users_count, get_active_users_page
from active_users.exceptions import StoreUnavailable
from active_users.permissions import has_api_permission

UNICODE = {"ensure_ascii": False}


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@never_cache
@require_GET
def active_users_info_view(request: HttpRequest) -> JsonResponse:
    """``{"data": [...], "count": N}``, as django-active-users serves it.

    With ``?limit=N`` (and ``&cursor=…`` from the previous answer) one page is served:
    ``count`` is then the number of all active entries and ``next`` the cursor of the
    next page.
    """
    if not has_api_permission(request):
        return _error(403, "You do not have permission to see active users.")
    limit = request.GET.get("limit")
    try:
        if limit is None:
            data = get_active_users()
            return JsonResponse({"data": data, "count": len(data)}, json_dumps_params=UNICODE)
        if not limit.isdigit():
            return _error(400, "limit: must be an integer from 1 to 1000.")
        page = get_active_users_page(int(limit), request.GET.get("cursor") or None)
        count = get_active_users_count()
    except StoreUnavailable:
        return _error(503, "The active users store is not answering; try again shortly.")
    except ValueError as exc:
        field = "cursor" if "cursor" in str(exc) else "limit"
        return _error(400, f"{field}: {exc}.")
    for user in page.users:
        user["last_active"] = user["last_active"].isoformat()
    return JsonResponse(
        {"data": page.users, "count": count, "next": page.next_cursor}, json_dumps_params=UNICODE
    )
