"""``{% load active_users %}``: live counts and lists, last seen and online status.

Tags: ``{% active_users_tracker %}`` (the client-side activity script),
``{% active_users_presence room %}`` ("N here now", live over a WebSocket, for viewers
let into the room),
``{% active_users_count %}``, ``{% active_users_list as entries %}`` (read the store;
they render nothing useful to people who may not see user data: see
``ACTIVE_USERS_API_PERMISSION``). Filters on a user: ``last_seen`` (datetime or None),
``is_online``, ``online_status`` (``online``/``idle``/``offline``), ``last_seen_text``
("Online now", "Last seen 3 minutes ago", "Never seen"; translated).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from django import template
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.exceptions import ValidationError
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from active_users import api, last_seen
from active_users.access import sign_room_token
from active_users.conf import conf
from active_users.exceptions import StoreUnavailable
from active_users.permissions import has_api_permission

register = template.Library()


@register.simple_tag
def active_users_count() -> int | str:
    """The number of active entries, or an empty string when the store is down."""
    try:
        return api.get_active_users_count()
    except StoreUnavailable:
        return ""


@register.simple_tag(takes_context=True)
def active_users_list(context: template.Context, limit: Any = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` active entries (1 to 1000), for those allowed to see user data;
    empty for a limit that is not such a number."""
    request = context.get("request")
    if request is None or not has_api_permission(request):
        return []
    try:
        return api.get_active_users_page(limit=int(limit)).users
    except (StoreUnavailable, ValueError, TypeError, OverflowError):
        return []


@register.simple_tag(takes_context=True)
def active_users_tracker(context: template.Context, endpoint: str | None = None) -> str:
    """The tracker script tag: ``<script src=… data-endpoint=… defer>``, with the CSRF token
    and the request's CSP nonce (``request.csp_nonce``) when there is one."""
    request = context.get("request")
    url = endpoint or reverse("active_users:log")
    nonce = getattr(request, "csp_nonce", None) if request is not None else None
    return format_html(
        '<script src="{}" data-endpoint="{}" data-heartbeat="{}" data-csrf-token="{}"{} defer>'
        "</script>",
        static("active_users/tracker.js"),
        url,
        f"{conf.ACTIVITY_HEARTBEAT:g}",
        get_token(request) if request is not None else "",
        format_html(' nonce="{}"', nonce) if nonce else "",
    )


@register.simple_tag(takes_context=True)
def active_users_presence(context: template.Context, room: Any) -> str:
    """ "N here now" for ``room``, kept live by ``presence.js`` over the presence WebSocket
    (``active_users.routing``); the element gets ``data-count`` and the page an
    ``active-users-presence`` event with each message, for richer displays.

    Rendering the tag lets the viewer into the room: it signs a room token for them (see
    ``active_users.access``). It renders nothing for a viewer who may not join: anonymous
    while ``ACTIVE_USERS_PRESENCE_ANONYMOUS`` is off, or refused by
    ``ACTIVE_USERS_PRESENCE_AUTHORIZE``. Its output is for one viewer: never cache it
    across users."""
    request = context.get("request")
    if request is None:
        return ""
    user = getattr(request, "user", None) or AnonymousUser()
    session = getattr(request, "session", None)
    if not user.is_authenticated and (not conf.PRESENCE_ANONYMOUS or session is None):
        return ""
    hook = conf.PRESENCE_AUTHORIZE
    if hook is not None and not hook(user, str(room)):
        return ""
    if session is not None and not user.is_authenticated and not session.session_key:
        session.save()  # the token is bound to the session: make one now
        session.modified = True  # and send its cookie
    token = sign_room_token(room, user, session)
    if token is None:
        return ""
    nonce = getattr(request, "csp_nonce", None)
    return format_html(
        '<span class="active-users-presence" data-active-users-presence data-url="/{}{}/"'
        ' data-token="{}" data-token-max-age="{}" data-heartbeat="{}"><span data-count>1'
        "</span> {}</span>"
        '<script src="{}"{} defer></script>',
        conf.PRESENCE_URL,
        quote(str(room), safe=""),
        token,
        f"{conf.PRESENCE_TOKEN_MAX_AGE:g}",
        f"{conf.PRESENCE_HEARTBEAT:g}",
        _("here now"),
        static("active_users/presence.js"),
        format_html(' nonce="{}"', nonce) if nonce else "",
    )


def _user_pk(user: Any) -> Any:
    """The primary key of ``user`` (or ``user`` itself, a primary key), or None for None, an
    anonymous user, or a value no user of the user model could have as primary key."""
    if user is None or getattr(user, "is_anonymous", False):
        return None
    try:
        pk = get_user_model()._meta.pk.to_python(getattr(user, "pk", user))
    except (ValidationError, ValueError, TypeError):
        return None
    text = str(pk)
    if pk is None or len(text) > 255 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return None if isinstance(pk, int) and not -(2**63) <= pk < 2**63 else pk


@register.filter(name="last_seen")
def last_seen_filter(user: Any) -> datetime | None:
    """When ``user`` (or a primary key) was last seen; None for nobody (see ``_user_pk``)."""
    pk = _user_pk(user)
    return None if pk is None else last_seen.last_seen(pk)


@register.filter
def is_online(user: Any) -> bool:
    return last_seen.status_of(last_seen_filter(user)) == last_seen.ONLINE


@register.filter
def online_status(user: Any) -> str:
    return last_seen.status_of(last_seen_filter(user))


@register.filter
def last_seen_text(user: Any) -> str:
    moment = last_seen_filter(user)
    if moment is None:
        return _("Never seen")
    if last_seen.status_of(moment) == last_seen.ONLINE:
        return _("Online now")
    return _("Last seen %(time)s") % {"time": naturaltime(moment)}
