"""Admin: a read-only last-seen admin, and last-seen columns and filter on the user admin.

The user admin is whichever ``ModelAdmin`` the project registered for its user model; it is
extended in ``AppConfig.ready()`` (list ``active_users`` after ``django.contrib.admin`` and
the app that registers the user admin). ``ACTIVE_USERS_ADMIN = False`` turns both off.
"""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from active_users import clock, dashboard
from active_users.api import views as api_views
from active_users.conf import conf
from active_users.history import RANGES
from active_users.last_seen import ONLINE, catch_up, live_seen, status_of
from active_users.models import Activity, Dashboard, LastSeen, SessionInfo
from active_users.permissions import is_staff

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin


class OutOfRangeLookups:
    """A lookup whose integer no column can hold (``?user__id__exact=999…``) redirects to
    the list with ``?e=1``, as any other wrong lookup does, instead of failing: Django
    before 5.0 sends it to SQLite as is, which refuses it with ``OverflowError``."""

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except OverflowError as exc:
            raise IncorrectLookupParameters(str(exc)) from exc


class ReadOnlyAdmin(OutOfRangeLookups, ModelAdmin):
    # No bulk actions ("Delete selected" included). Deleting stays permitted: the admin
    # refuses to delete a user whose rows here the staff member could not delete.
    actions = None

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LastSeenAdmin(ReadOnlyAdmin):
    list_display = ["user", "last_activity"]
    list_select_related = ["user"]
    date_hierarchy = "last_activity"
    search_fields = ["user__" + get_user_model().USERNAME_FIELD]


class ActivityAdmin(ReadOnlyAdmin):
    list_display = ["date", "event", "user", "path", "ip"]
    list_filter = ["event", "date", ("user", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["path"]
    date_hierarchy = "date"
    show_full_result_count = False  # no COUNT(*) over millions of rows on every page


class SessionInfoAdmin(ReadOnlyAdmin):
    list_display = ["session", "user_agent", "created"]
    search_fields = ["user_agent"]


def _dashboard_websocket() -> str:
    """The path of the pushed counts when the project uses Channels (``CHANNEL_LAYERS`` is
    set); the page falls back to polling while the socket is not open."""
    if not getattr(settings, "CHANNEL_LAYERS", None) or not importlib.util.find_spec("channels"):
        return ""
    return "/ws/active-users/dashboard/"


class DashboardAdmin(ModelAdmin):
    """The live dashboard: listed in the admin index for every staff member; the page and
    its JSON views are served by the admin site, so they need no URL configuration."""

    DATA = {
        "counts": api_views.counts,
        "users": dashboard.users,
        "history": api_views.history,
        "uniques": api_views.uniques,
        "pages": dashboard.pages,
    }

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_staff(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _url_name(self, name: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{name}"

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view

        def data(name: str) -> URLPattern:
            view = api_views.api_view(self.DATA[name], allowed=is_staff)
            return path(f"data/{name}/", wrap(view), name=self._url_name(name))

        page = wrap(self.changelist_view)
        return [
            path("", page, name=self._url_name("changelist")),
            *(data(name) for name in self.DATA),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        site = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "title": _("Dashboard"),
            "opts": self.opts,
            "data_urls": {name: reverse(f"{site}:{self._url_name(name)}") for name in self.DATA},
            "ranges": list(RANGES),
            "refresh": conf.DASHBOARD_REFRESH,
            "websocket": _dashboard_websocket(),
            "key_expire": conf.KEY_EXPIRE,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/active_users/dashboard.html", context)


class LastSeenFilter(admin.SimpleListFilter):
    title = _("last seen")
    parameter_name = "last_seen"
    WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1),
               "week": timedelta(weeks=1), "30days": timedelta(days=30)}  # fmt: skip

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("hour", _("Active in the last hour")),
            ("day", _("Active in the last day")),
            ("week", _("Active in the last week")),
            ("30days", _("Active in the last 30 days")),
            ("never", _("Never seen")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "never":
            return queryset.filter(active_users_last_seen__isnull=True)
        if value in self.WINDOWS:
            since = clock.ago(self.WINDOWS[value])
            return queryset.filter(active_users_last_seen__last_activity__gte=since)
        return queryset


class LastSeenColumns(OutOfRangeLookups):
    """Mixed into the project's user admin: two sortable columns from one joined column.

    The changelist first brings the ``LastSeen`` rows up to date (``last_seen.catch_up``),
    so that the filter and the ordering see users active since the last flush; the page's
    rows then take the live store's values in one round trip for the page."""

    @admin.display(description=_("last seen"), ordering="_last_seen")
    def last_seen(self, obj: Any) -> Any:
        return obj._last_seen

    @admin.display(description=_("online"), boolean=True, ordering="_last_seen")
    def online(self, obj: Any) -> bool:
        return status_of(obj._last_seen) == ONLINE

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        annotated: QuerySet[Any] = queryset.annotate(
            _last_seen=F("active_users_last_seen__last_activity")
        )
        return annotated

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        catch_up()
        return super().changelist_view(request, extra_context)  # type: ignore[misc,no-any-return]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluated once; the template reuses them
        live = live_seen([str(row.pk) for row in rows])
        for row in rows:
            stamp = live.get(str(row.pk))
            if stamp is None:
                continue
            moment = clock.from_timestamp(stamp)  # naive when USE_TZ is off, as the column
            if row._last_seen is None or moment > row._last_seen:
                row._last_seen = moment
        return changelist


def extend_user_admin(site: admin.AdminSite = admin.site) -> None:
    """Add the columns and the filter to the registered user admin (idempotent)."""
    User = get_user_model()
    current = site._registry.get(User)
    if current is None or isinstance(current, LastSeenColumns):
        return
    base = type(current)
    extended = type(
        base.__name__,
        (LastSeenColumns, base),
        {
            "__module__": base.__module__,
            "list_display": [*base.list_display, "last_seen", "online"],
            "list_filter": [*base.list_filter, LastSeenFilter],
        },
    )
    site.unregister(User)
    site.register(User, extended)


if conf.ADMIN:
    admin.site.register(Dashboard, DashboardAdmin)
    admin.site.register(LastSeen, LastSeenAdmin)
    admin.site.register(Activity, ActivityAdmin)
    admin.site.register(SessionInfo, SessionInfoAdmin)
