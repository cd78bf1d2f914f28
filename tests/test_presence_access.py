"""Who may open the WebSockets, without a server: room tokens and the origin check."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core import signing
from django.test import override_settings

from active_users.access import (
    SALT,
    check_room_token,
    origin_allowed,
    query_token,
    sign_room_token,
    subject,
)


def User(pk: int) -> Any:
    """A user with this pk (not saved: tokens read only the pk)."""
    return get_user_model()(pk=pk, username=f"user{pk}")


def test_a_token_opens_its_room_for_its_user_only() -> None:
    ada, bob = User(1), User(2)
    token = sign_room_token(42, ada, None)  # a room given as a pk is its text
    assert check_room_token(token, "42", ada, None)
    assert not check_room_token(token, "43", ada, None)
    assert not check_room_token(token, "42", bob, None)
    assert not check_room_token(token, "42", AnonymousUser(), None)
    assert not check_room_token(None, "42", ada, None)
    assert not check_room_token("", "42", ada, None)


def test_a_token_signed_with_another_key_or_salt_or_altered_is_refused() -> None:
    ada = User(1)
    assert not check_room_token(
        signing.dumps(["42", "u:1"], salt=SALT, key="x" * 50), "42", ada, None
    )
    assert not check_room_token(signing.dumps(["42", "u:1"]), "42", ada, None)
    token = sign_room_token("42", ada, None)
    assert token is not None
    assert not check_room_token(token.replace(":", ":x", 1), "42", ada, None)


def test_an_anonymous_token_is_bound_to_its_session_without_revealing_the_key() -> None:
    mine, theirs = SessionStore(session_key="a" * 32), SessionStore(session_key="b" * 32)
    token = sign_room_token("lobby", AnonymousUser(), mine)
    assert (
        token is not None
        and "a" * 32 not in signing.b64_decode(token.split(":")[0].encode()).decode()
    )
    assert check_room_token(token, "lobby", AnonymousUser(), mine)
    assert not check_room_token(token, "lobby", AnonymousUser(), theirs)
    assert sign_room_token("lobby", AnonymousUser(), SessionStore()) is None  # no session yet
    assert subject(AnonymousUser(), None) is None


def test_an_old_token_is_refused() -> None:
    ada = User(1)
    token = sign_room_token("42", ada, None)
    with override_settings(ACTIVE_USERS_PRESENCE_TOKEN_MAX_AGE=-1):
        assert not check_room_token(token, "42", ada, None)


def test_the_token_comes_from_the_query_string() -> None:
    assert query_token({"query_string": b"token=a%3Ab&x=1"}) == "a:b"
    assert query_token({"query_string": b""}) is None
    assert query_token({}) is None


def scope(origin: str | None, host: str = "app.test:8000") -> dict[str, object]:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"headers": headers}


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("http://app.test:8000", True),  # the page's own origin
        ("https://app.test:8000", True),
        ("https://elsewhere.example", False),
        ("http://app.test:8001", False),  # another port is another origin
        ("http://app.test:8000.evil.example", False),
        ("null", False),  # a sandboxed frame or a file
        ("ftp://app.test:8000", False),
        ("http://[::1", False),  # does not parse
    ],
)
@override_settings(ALLOWED_HOSTS=["*"])
def test_a_foreign_origin_is_refused_even_when_every_host_is_allowed(
    origin: str | None, allowed: bool
) -> None:
    assert origin_allowed(scope(origin)) is allowed


@override_settings(ALLOWED_HOSTS=["app.test", ".example.org", "[::1]"])
def test_an_origin_matching_allowed_hosts_is_accepted_behind_a_proxy() -> None:
    for origin in ("https://app.test", "https://www.example.org", "http://[::1]:8000"):
        assert origin_allowed(scope(origin, host="10.0.0.5:8000"))
    assert not origin_allowed(scope("https://example.com", host="10.0.0.5:8000"))


@override_settings(ALLOWED_HOSTS=[], DEBUG=True)
def test_local_origins_are_accepted_in_debug_with_no_allowed_hosts() -> None:
    assert origin_allowed(scope("http://localhost:3000", host="127.0.0.1:8000"))
    assert not origin_allowed(scope("http://elsewhere.example", host="127.0.0.1:8000"))
