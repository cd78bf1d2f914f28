"""The JSON view ``active-users-info/`` and its permission setting."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from active_users import api

URL = "/active-users/active-users-info/"

pytestmark = pytest.mark.usefixtures("backend_name")


def login(make_user, **fields) -> Client:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(make_user(**fields))
    browser.get("/page/")
    return browser


def test_staff_see_the_data_and_count_as_django_active_users_serves_them(make_user) -> None:
    login(make_user, username="someone")
    staff = login(make_user, username="boss", is_staff=True)
    body = staff.get(URL).json()
    assert body["count"] == 2
    assert {d["username"] for d in body["data"]} == {"someone", "boss"}
    assert set(body["data"][0]) == {"user_id", "session_id", "ip", "username"}


def test_by_default_anonymous_and_non_staff_users_get_403_and_no_data(make_user) -> None:
    login(make_user, username="secret-name")
    for browser in (Client(), login(make_user)):
        response = browser.get(URL)
        assert response.status_code == 403
        assert b"secret-name" not in response.content


@pytest.mark.parametrize(
    ("permission", "anonymous", "user"),
    [
        ("authenticated", 403, 200),
        ("public", 200, 200),
        ("tests.test_api_view.only_carol", 403, 200),
    ],
)
def test_the_permission_setting_opens_the_view(make_user, permission, anonymous, user) -> None:
    with override_settings(ACTIVE_USERS_API_PERMISSION=permission):
        assert Client().get(URL).status_code == anonymous
        assert login(make_user, username="carol").get(URL).status_code == user


def only_carol(request) -> bool:  # type: ignore[no-untyped-def]
    return request.user.get_username() == "carol"


def test_a_limit_serves_one_page_and_a_cursor_to_the_next(make_user) -> None:
    for n in range(5):
        login(make_user, username=f"u{n}")
    staff = login(make_user, username="boss", is_staff=True)
    first = staff.get(URL, {"limit": 4}).json()
    assert first["count"] == 6 and len(first["data"]) == 4 and first["next"]
    second = staff.get(URL, {"limit": 4, "cursor": first["next"]}).json()
    assert len(second["data"]) == 2 and second["next"] is None
    names = [d["username"] for d in first["data"] + second["data"]]
    assert sorted(names) == ["boss", "u0", "u1", "u2", "u3", "u4"]
    assert "last_active" in first["data"][0]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "ten"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"limit": "5", "cursor": "garbage!"}, "cursor"),
    ],
)
def test_bad_paging_parameters_get_400_naming_the_parameter(make_user, query, message) -> None:
    staff = login(make_user, is_staff=True)
    response = staff.get(URL, query)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_post_is_refused_with_405(make_user) -> None:
    staff = login(make_user, is_staff=True)
    assert staff.post(URL).status_code == 405


def test_page_function_refuses_a_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        api.get_active_users_page(limit=0)


def test_v1_counts_and_users_pages(make_user) -> None:
    for n in range(3):
        login(make_user, username=f"v{n}")
    staff = login(make_user, username="boss", is_staff=True)
    counts = staff.get("/tracking/v1/counts/").json()
    assert (counts["entries"], counts["users"], counts["visitors"]) == (4, 4, 0)
    assert counts["key_expire"] == 20 and counts["time"].endswith("+00:00")
    first = staff.get("/tracking/v1/users/", {"limit": 3}).json()
    second = staff.get("/tracking/v1/users/", {"limit": 3, "cursor": first["next"]}).json()
    names = [u["username"] for u in first["users"] + second["users"]]
    assert sorted(names) == ["boss", "v0", "v1", "v2"] and second["next"] is None
    assert staff.get("/tracking/v1/users/", {"cursor": "nope"}).status_code == 400


def test_v1_is_guarded_like_the_info_view(make_user) -> None:
    for url in ("/tracking/v1/counts/", "/tracking/v1/users/"):
        assert Client().get(url).status_code == 403
        assert login(make_user).get(url).status_code == 403
