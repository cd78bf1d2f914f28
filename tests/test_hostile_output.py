"""Hostile values on the way out: terminal escapes."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from active_users.text import printable, printable_json

# Sets the terminal's title, rings the bell, clears the screen and paints the rest red.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred"
SHOWN = r"\x1b]0;pwned\x07\x1b[2J\x1b[31mred"
REVERSED = "admin\u202egnp.exe"
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
