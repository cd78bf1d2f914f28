"""The tracker script in a real headless Chromium, against a live server."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.test import Client, override_settings

from active_users.models import Activity

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the browser")
        time.sleep(0.1)


def events(name: str) -> list[Activity]:
    return list(Activity.objects.filter(event=name).order_by("id"))


@override_settings(ACTIVE_USERS_ACTIVITY_HEARTBEAT=0.5, ACTIVE_USERS_ACTIVITY_RATE_LIMIT=None)
def test_the_tracker_reports_views_heartbeats_visibility_and_page_hide(
    chromium, live_server, django_user_model
) -> None:
    user = django_user_model.objects.create_user("reader", password="pw")
    client = Client()
    client.force_login(user)
    chromium.get(live_server.url + "/page/")
    chromium.add_cookie({"name": "sessionid", "value": client.cookies["sessionid"].value})

    chromium.get(live_server.url + "/tracked/")
    wait_for(lambda: len(events("pageview")) == 1)
    view = events("pageview")[0]
    assert (view.path, view.user_id) == ("/tracked/", user.pk)

    wait_for(lambda: len(events("heartbeat")) >= 3)  # heartbeats while visible

    first_tab = chromium.current_window_handle
    chromium.switch_to.new_window("tab")  # the tracked tab is now hidden
    wait_for(lambda: len(events("hidden")) == 1)
    time.sleep(0.2)
    beats = len(events("heartbeat"))
    time.sleep(2.0)  # four heartbeat periods
    assert len(events("heartbeat")) == beats, "heartbeats were sent while hidden"

    chromium.close()
    chromium.switch_to.window(first_tab)  # visible again
    wait_for(lambda: len(events("visible")) == 1)
    wait_for(lambda: len(events("heartbeat")) > beats)

    chromium.execute_script("history.pushState({}, '', '/tracked/chapter-2')")
    wait_for(lambda: len(events("pageview")) == 2)
    assert events("pageview")[1].path == "/tracked/chapter-2"

    chromium.get(live_server.url + "/page/")  # leaving the page: a beacon
    wait_for(lambda: len(events("hidden")) == 2)
    assert events("hidden")[1].path == "/tracked/chapter-2"
    assert all(a.user_id == user.pk for a in Activity.objects.all())
    # No request of the browser may reach the live server after this test's database is gone.
    chromium.get("about:blank")
    time.sleep(1.0)
