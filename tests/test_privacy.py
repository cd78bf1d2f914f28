"""Privacy: what is stored about people, who may see it, and erasing it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from active_users import api, clock
from active_users.backends import get_backend
from active_users.last_seen import flush_last_seen, last_seen
from active_users.models import Activity, LastSeen

pytestmark = pytest.mark.usefixtures("backend_name")


def visit(user, **meta: str) -> Client:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(user)
    browser.get("/page/", **meta)
    return browser


@pytest.mark.parametrize(
    ("remote", "stored"),
    [("203.0.113.77", "203.0.113.0"), ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::")],
)
def test_anonymized_ips_keep_only_the_network(make_user, remote, stored) -> None:
    with override_settings(ACTIVE_USERS_ANONYMIZE_IP=True):
        visit(make_user(), REMOTE_ADDR=remote)
        assert api.get_active_users()[0]["ip"] == stored


@override_settings(ACTIVE_USERS_STORE_IP=False)
def test_no_ip_is_stored_when_storing_ips_is_off(make_user) -> None:
    browser = visit(make_user(), REMOTE_ADDR="198.51.100.9")
    token = browser.cookies["csrftoken"].value if "csrftoken" in browser.cookies else ""
    browser.post("/tracking/log/", json.dumps({"date": datetime.now(timezone.utc).isoformat()}),
                 content_type="application/json", HTTP_X_CSRFTOKEN=token)  # fmt: skip
    assert api.get_active_users()[0]["ip"] == ""
    assert all(a.ip is None for a in Activity.objects.all())


@override_settings(ACTIVE_USERS_TRUSTED_PROXIES=["10.0.0.1"])
def test_a_malformed_forwarded_for_is_ignored(make_user) -> None:
    visit(make_user(), REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip, <script>")
    assert api.get_active_users()[0]["ip"] == "10.0.0.1"


def test_html_in_usernames_is_escaped_in_the_admin_and_the_json(make_user) -> None:
    evil = '<img src=x onerror="alert(1)">'
    user = make_user(evil)
    visit(user)
    flush_last_seen(force=True)
    admin = Client()
    admin.force_login(make_user("root", is_staff=True, is_superuser=True))
    for url in ("/admin/auth/user/", "/admin/active_users/lastseen/"):
        page = admin.get(url).content.decode()
        assert evil not in page and "&lt;img src=x" in page
    body = admin.get("/active-users/active-users-info/")
    assert body["Content-Type"] == "application/json"
    assert evil in [d["username"] for d in body.json()["data"]]


def test_erasing_a_user_removes_live_entries_last_seen_and_activity(make_user) -> None:
    user, other = make_user("erase-me"), make_user("keep-me")
    visit(user)
    visit(other)
    flush_last_seen(force=True)
    Activity.objects.create(user=user, date=clock.now(), event="pageview")
    Activity.objects.create(user=other, date=clock.now(), event="pageview")
    call_command("active_users_erase_user", str(user.pk))
    assert [e["username"] for e in api.get_active_users()] == ["keep-me"]
    assert get_backend().seen([str(user.pk)]) == {}
    assert not LastSeen.objects.filter(user=user).exists()
    assert list(Activity.objects.values_list("user__username", flat=True)) == ["keep-me"]
    assert last_seen(user) is None
