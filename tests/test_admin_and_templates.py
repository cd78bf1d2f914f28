"""What people see: the template tags and filters, and the admin."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin import site
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from active_users.access import check_room_token
from active_users.backends import Presence, get_backend
from active_users.last_seen import flush_last_seen
from active_users.models import Activity, LastSeen

pytestmark = pytest.mark.usefixtures("backend_name")


def render(source: str, **context: object) -> str:
    return Template("{% load active_users %}" + source).render(Context(context)).strip()


def test_filters_say_online_now_for_a_user_who_just_made_a_request(make_user) -> None:
    user = make_user()
    browser = Client()
    browser.force_login(user)
    browser.get("/page/")
    assert render("{{ u|last_seen_text }}|{{ u|online_status }}|{{ u|is_online }}", u=user) == (
        "Online now|online|True"
    )


def test_filters_say_how_long_ago_in_humanize_words(make_user) -> None:
    user = make_user()
    get_backend().touch(Presence('["x"]', str(user.pk)), now=time.time() - 10 * 60)
    assert render("{{ u|last_seen_text }}|{{ u|online_status }}", u=user) == (
        "Last seen 10\xa0minutes ago|idle"
    )
    assert render("{{ u|last_seen|date:'Y' }}", u=user) == str(timezone.now().year)


def test_filters_say_never_seen_for_a_new_user(make_user) -> None:
    assert render("{{ u|last_seen_text }}|{{ u|online_status }}", u=make_user()) == (
        "Never seen|offline"
    )


def test_count_and_list_tags(make_user) -> None:
    for name in ("ann", "<b>bold</b>"):
        browser = Client()
        browser.force_login(make_user(name))
        browser.get("/page/")
    staff_request = RequestFactory().get("/")
    staff_request.user = make_user("boss", is_staff=True)
    source = (
        "{% active_users_count %}:{% active_users_list as entries %}"
        "{% for e in entries %}{{ e.username }},{% endfor %}"
    )
    assert render(source, request=staff_request) == "2:&lt;b&gt;bold&lt;/b&gt;,ann,"
    anonymous_request = RequestFactory().get("/")
    anonymous_request.user = get_user_model()()
    assert render(source, request=anonymous_request) == "2:"  # no names for non-staff


def admin_changelist_queries(count: int) -> tuple[int, str]:
    """The changelist of ``count`` users, half with a stored last-seen row, all active now in
    the live store only: its queries, and the page."""
    User = get_user_model()
    User.objects.bulk_create(User(username=f"bulk{n}") for n in range(count))
    people = list(User.objects.filter(username__startswith="bulk"))
    now = timezone.now()
    LastSeen.objects.bulk_create(
        LastSeen(user=u, last_activity=now - timedelta(minutes=10 + n))
        for n, u in enumerate(people[: count // 2])
    )
    # Another reader holds the catch-up: the page shows live values for its rows anyway.
    get_backend().claim_catch_up(60)
    stamp = time.time() - 2
    get_backend().touch_many([(Presence(f'["{u.pk}"]', str(u.pk)), stamp) for u in people])
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    with CaptureQueriesContext(connection) as queries:
        response = admin.get("/admin/auth/user/", {"o": "1"})
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_user_admin_shows_last_seen_and_online_with_a_fixed_number_of_queries(db) -> None:
    few, page = admin_changelist_queries(10)
    assert page.count('<td class="field-online"><img src="/static/admin/img/icon-yes.svg"') == 10
    get_user_model().objects.all().delete()
    get_backend().clear()
    many, page = admin_changelist_queries(1000)
    print(f"admin changelist: {few} queries with 10 users, {many} with 1,000 (live values)")
    assert many == few
    assert "column-last_seen" in page and "column-online" in page
    assert "Active in the last hour" in page and "Never seen" in page
    # Every row of the page (100 by default, all "bulk…") is online from the live store.
    assert page.count('<td class="field-online"><img src="/static/admin/img/icon-yes.svg"') == 100


def test_the_last_seen_filter_selects_users(make_user) -> None:
    recent, old = make_user("recent"), make_user("old")
    make_user("never")
    LastSeen.objects.create(user=recent, last_activity=timezone.now() - timedelta(minutes=5))
    LastSeen.objects.create(user=old, last_activity=timezone.now() - timedelta(days=3))
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    hour = admin.get("/admin/auth/user/", {"last_seen": "hour"}).content.decode()
    assert ">recent<" in hour and ">old<" not in hour
    week = admin.get("/admin/auth/user/", {"last_seen": "week"}).content.decode()
    assert ">recent<" in week and ">old<" in week and ">never<" not in week
    nobody = admin.get("/admin/auth/user/", {"last_seen": "never"}).content.decode()
    assert ">never<" in nobody and ">recent<" not in nobody


def test_the_last_seen_admin_is_read_only(make_user) -> None:
    user = make_user("seen")
    browser = Client()
    browser.force_login(user)
    browser.get("/page/")
    flush_last_seen(force=True)
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    listing = admin.get("/admin/active_users/lastseen/")
    assert listing.status_code == 200 and ">seen<" in listing.content.decode()
    assert admin.get("/admin/active_users/lastseen/add/").status_code == 403


@pytest.mark.parametrize("model", ["lastseen", "activity", "sessioninfo"])
def test_the_read_only_admins_offer_no_delete_selected_action(make_user, model: str) -> None:
    root = make_user("root", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(root)
    page = admin.get(f"/admin/active_users/{model}/")
    assert page.status_code == 200
    assert "delete_selected" not in page.content.decode()
    request = RequestFactory().get("/")
    request.user = root
    assert site._registry[apps.get_model("active_users", model)].get_actions(request) == {}


def test_a_user_with_last_seen_and_activity_can_still_be_deleted_in_the_admin(make_user) -> None:
    user = make_user("leaving")
    LastSeen.objects.create(user=user, last_activity=timezone.now())
    Activity.objects.create(user=user, date=timezone.now(), event="pageview")
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    done = admin.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert done.status_code == 302
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert not LastSeen.objects.filter(user_id=user.pk).exists()


def test_browser_sessions_are_named_so_in_the_admin(make_user) -> None:
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    index = admin.get("/admin/").content.decode()
    assert "Browser sessions" in index and "Session infos" not in index


def staff_rooms_for_staff(user: Any, room: str) -> bool:
    """An ``ACTIVE_USERS_PRESENCE_AUTHORIZE`` hook: rooms named ``staff-…`` are for staff."""
    return not room.startswith("staff-") or user.is_staff


def presence_request(user: Any) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    request.session = SessionStore()
    return request


def presence_token(markup: str) -> str:
    found = re.search(r'data-token="([^"]+)"', markup)
    assert found, markup
    return html.unescape(found[1])


def test_the_presence_tag_signs_a_token_for_its_viewer_and_room(make_user) -> None:
    ada = make_user("ada")
    request = presence_request(ada)
    markup = render("{% active_users_presence 42 %}", request=request)
    assert 'data-url="/ws/presence/42/"' in markup and 'data-token-max-age="300"' in markup
    token = presence_token(markup)
    assert check_room_token(token, "42", ada, request.session)
    assert not check_room_token(token, "43", ada, request.session)
    assert not check_room_token(token, "42", make_user("bob"), request.session)


def test_the_presence_tag_renders_nothing_for_anonymous_viewers_by_default(db) -> None:
    request = presence_request(AnonymousUser())
    assert render("{% active_users_presence 'lobby' %}", request=request) == ""
    assert render("{% active_users_presence 'lobby' %}") == ""  # no request at all
    assert request.session.session_key is None


@override_settings(ACTIVE_USERS_PRESENCE_ANONYMOUS=True)
def test_the_presence_tag_makes_a_session_for_an_anonymous_viewer_when_allowed(db) -> None:
    request = presence_request(AnonymousUser())
    token = presence_token(render("{% active_users_presence 'lobby' %}", request=request))
    assert request.session.session_key and request.session.modified  # the cookie is sent
    assert check_room_token(token, "lobby", AnonymousUser(), request.session)
    assert not check_room_token(token, "lobby", AnonymousUser(), SessionStore("x" * 32))


@override_settings(
    ACTIVE_USERS_PRESENCE_AUTHORIZE="tests.test_admin_and_templates.staff_rooms_for_staff"
)
def test_the_presence_tag_asks_the_authorize_hook(make_user) -> None:
    member, boss = make_user("member"), make_user("boss", is_staff=True)
    source = "{% active_users_presence 'staff-desk' %}"
    assert render(source, request=presence_request(member)) == ""
    assert presence_token(render(source, request=presence_request(boss)))
    assert presence_token(render("{% active_users_presence 'lobby' %}",
                                 request=presence_request(member)))  # fmt: skip
    with override_settings(ACTIVE_USERS_PRESENCE_ANONYMOUS=True):
        anonymous = presence_request(AnonymousUser())
        assert render(source, request=anonymous) == ""
        assert anonymous.session.session_key is None  # no session made for a refused viewer
