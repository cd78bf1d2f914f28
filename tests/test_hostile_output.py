"""Hostile values on the way out: terminal escapes, spreadsheet formulas, and HEAD requests."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from active_users import clock
from active_users.models import Activity
from active_users.text import csv_cell, printable, printable_json

# Sets the terminal's title, rings the bell, clears the screen and paints the rest red.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred"
SHOWN = r"\x1b]0;pwned\x07\x1b[2J\x1b[31mred"
REVERSED = "admin\u202egnp.exe"
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1)", "-1", "@x", "\tx", "\rx"]
CLEAR = "\033[H\033[2J"


def visit(make_user, name: str) -> None:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(make_user(name))
    browser.get("/page/")


def test_printable_escapes_controls_and_bidi_overrides_and_keeps_the_rest() -> None:
    assert printable(HOSTILE) == SHOWN
    assert printable("a\tb\nc\x00\x7f\x9b") == r"a\x09b\x0ac\x00\x7f\x9b"
    assert printable(REVERSED) == r"admin\u202egnp.exe"
    assert printable("\u202a\u202d\u2066\u2069") == r"\u202a\u202d\u2066\u2069"
    assert printable("Zoë 山田 back\\slash") == "Zoë 山田 back\\slash"


def test_printable_json_parses_back_to_the_exact_value() -> None:
    value = {"name": HOSTILE + "\x7f\x9b" + REVERSED, "plain": "Zoë"}
    text = printable_json(value)
    assert json.loads(text) == value
    assert not any(c in text for c in "\x1b\x07\x7f\x9b\u202e")
    assert "Zoë" in text


@pytest.mark.usefixtures("backend_name")
def test_the_command_prints_a_hostile_username_escaped(make_user) -> None:
    visit(make_user, HOSTILE)
    visit(make_user, REVERSED)
    out = StringIO()
    call_command("active_users", stdout=out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert any(SHOWN in line for line in text.splitlines())
    assert any(r"admin\u202egnp.exe" in line for line in text.splitlines())


@pytest.mark.usefixtures("backend_name")
def test_watch_escapes_the_username_and_only_clears_the_screen_itself(make_user) -> None:
    visit(make_user, HOSTILE)
    out = StringIO()
    call_command("active_users", "--watch", "--interval", "0.01", "--times", "1", stdout=out)
    text = out.getvalue()
    assert text.startswith(CLEAR)
    assert "\x1b" not in text[len(CLEAR) :] and SHOWN in text


@pytest.mark.usefixtures("backend_name")
def test_json_round_trips_the_exact_hostile_username(make_user) -> None:
    visit(make_user, HOSTILE)
    visit(make_user, REVERSED)
    out = StringIO()
    call_command("active_users", "--json", stdout=out)
    text = out.getvalue()
    assert "\x1b" not in text and "\u202e" not in text
    names = {user["username"] for user in json.loads(text)["active_users"]}
    assert names == {HOSTILE, REVERSED}


def test_erase_user_refuses_an_id_that_is_no_user_id_and_prints_it_escaped(db) -> None:
    with pytest.raises(CommandError) as refused:
        call_command("active_users_erase_user", "7\x1b[2J", stdout=StringIO())
    assert str(refused.value) == "Not a user id: 7\\x1b[2J."


def make_formula_events() -> datetime:
    start = clock.from_client(datetime(2026, 1, 1))  # midnight in the site's time zone
    Activity.objects.bulk_create(
        Activity(date=start + timedelta(minutes=n), event="pageview", path=value, referer=value)
        for n, value in enumerate(FORMULAS)
    )
    return start


def export(*options: str) -> str:
    out = StringIO()
    call_command("active_users_export_activity", "--since", "2026-01-01", "--until",
                 "2026-01-02", *options, stdout=out, stderr=StringIO())  # fmt: skip
    return out.getvalue()


def test_csv_cells_a_spreadsheet_would_evaluate_get_a_leading_quote(db) -> None:
    start = make_formula_events()
    rows = list(csv.DictReader(StringIO(export("--format", "csv"), newline="")))
    assert [r["path"] for r in rows] == ["'" + value for value in FORMULAS]
    assert [r["referer"] for r in rows] == ["'" + value for value in FORMULAS]
    assert all(r["id"].isdigit() for r in rows)
    assert [r["date"] for r in rows] == [
        clock.iso(start + timedelta(minutes=n)) for n in range(len(FORMULAS))
    ]
    assert {r["event"] for r in rows} == {"pageview"}


def test_a_csv_file_is_neutralised_too(db, tmp_path) -> None:
    make_formula_events()
    path = tmp_path / "activity.csv"
    export("--output", str(path))
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [r["path"] for r in rows] == ["'" + value for value in FORMULAS]


def test_json_lines_keep_the_values_exact(db) -> None:
    make_formula_events()
    rows = [json.loads(line) for line in export("--format", "jsonl").splitlines()]
    assert [r["path"] for r in rows] == FORMULAS
    assert [r["referer"] for r in rows] == FORMULAS


def test_csv_cell_leaves_harmless_values_alone() -> None:
    assert [csv_cell(v) for v in ("/a=b", "a-b", "", None, -1, 3)] == [
        "/a=b",
        "a-b",
        "",
        None,
        -1,
        3,
    ]


V1 = ["/tracking/v1/counts/", "/tracking/v1/users/", "/tracking/v1/history/",
      "/tracking/v1/uniques/", "/tracking/active-users-info/",
      "/active-users/active-users-info/"]  # fmt: skip
DASHBOARD_DATA = [
    f"/admin/active_users/dashboard/data/{name}/"
    for name in ("counts", "users", "history", "uniques", "pages")
]


def login(make_user, **fields) -> Client:  # type: ignore[no-untyped-def]
    browser = Client()
    browser.force_login(make_user(**fields))
    return browser


@pytest.mark.parametrize("url", V1 + DASHBOARD_DATA)
def test_head_answers_like_get_without_a_body(make_user, url: str) -> None:
    staff = login(make_user, username="boss", is_staff=True)
    get, head = staff.get(url), staff.head(url)
    assert get.status_code == head.status_code == 200
    assert head.content == b""
    for header in ("Content-Type", "Cache-Control"):
        assert head[header] == get[header]


@pytest.mark.parametrize("url", V1 + DASHBOARD_DATA)
def test_head_is_refused_as_get_is(make_user, url: str) -> None:
    for browser in (Client(), login(make_user)):
        get, head = browser.get(url), browser.head(url)
        assert head.status_code == get.status_code and get.status_code in (302, 403)
        assert head.content == b""


def test_other_methods_are_refused_naming_get_and_head(make_user) -> None:
    staff = login(make_user, is_staff=True)
    for url in V1:
        response = staff.post(url)
        assert response.status_code == 405
        assert response["Allow"] == "GET, HEAD"
