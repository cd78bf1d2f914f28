"""Who may join a presence room: signed room tokens.

A room token is ``signing.dumps([room, subject])`` under a salt of the package's own. It
proves that the application let this person into this room at most
``ACTIVE_USERS_PRESENCE_TOKEN_MAX_AGE`` seconds ago. The subject is ``u:<pk>`` for a user
and ``s:<keyed hash of the session key>`` for an anonymous session, so a token copied to
another account or another browser does not open the room. Tokens are signed, not
encrypted: anyone holding one can read the room name and the user's pk in it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from django.core import signing
from django.utils.crypto import salted_hmac

from active_users.conf import conf

SALT = "active_users.presence.room-token"


def subject(user: Any, session: Any) -> str | None:
    """Whom a token is for: the user, else the anonymous session; None without either."""
    if user is not None and user.is_authenticated:
        return f"u:{user.pk}"
    key = getattr(session, "session_key", None) if session is not None else None
    if not key:
        return None
    return "s:" + salted_hmac(SALT + ".session", key).hexdigest()[:32]


def sign_room_token(room: Any, user: Any, session: Any) -> str | None:
    """A token letting ``user`` (or, when anonymous, ``session``) into ``room``; None for an
    anonymous viewer without a session."""
    who = subject(user, session)
    return None if who is None else signing.dumps([str(room), who], salt=SALT)


def check_room_token(token: str | None, room: str, user: Any, session: Any) -> bool:
    """Whether ``token`` was signed by this site for this room and this person, and is
    younger than ``ACTIVE_USERS_PRESENCE_TOKEN_MAX_AGE`` seconds."""
    who = subject(user, session)
    if not token or who is None:
        return False
    try:
        found = signing.loads(token, salt=SALT, max_age=conf.PRESENCE_TOKEN_MAX_AGE)
    except signing.BadSignature:  # forged, altered or expired
        return False
    return found == [room, who]


def query_token(scope: dict[str, Any]) -> str | None:
    """The ``token`` parameter of a WebSocket's query string."""
    query = scope.get("query_string", b"").decode("latin1")
    values = parse_qs(query).get("token")
    return values[0] if values else None
