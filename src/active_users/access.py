"""Who may open the package's WebSockets: signed room tokens, the authorization hook and
the origin check.

A room token is ``signing.dumps([room, subject])`` under a salt of the package's own. It
proves that the application let this person into this room at most
``ACTIVE_USERS_PRESENCE_TOKEN_MAX_AGE`` seconds ago. The subject is ``u:<pk>`` for a user
and ``s:<keyed hash of the session key>`` for an anonymous session, so a token copied to
another account or another browser does not open the room. Tokens are signed, not
encrypted: anyone holding one can read the room name and the user's pk in it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core import signing
from django.http.request import validate_host
from django.utils.crypto import salted_hmac

from active_users.conf import conf

SALT = "active_users.presence.room-token"
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


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
    max_age = timedelta(seconds=conf.PRESENCE_TOKEN_MAX_AGE)
    try:
        found = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.BadSignature:  # forged, altered or expired
        return False
    return bool(found == [room, who])


def query_token(scope: dict[str, Any]) -> str | None:
    """The ``token`` parameter of a WebSocket's query string."""
    query = scope.get("query_string", b"").decode("latin1")
    values = parse_qs(query).get("token")
    return values[0] if values else None


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether a WebSocket handshake comes from one of this site's pages.

    No ``Origin`` header: a client that is not a browser, allowed (browsers always send
    one, so a page of another site cannot leave it out). Otherwise the origin's host must
    equal the ``Host`` header, or match ``ALLOWED_HOSTS`` as Channels'
    ``AllowedHostsOriginValidator`` matches it, except that a ``"*"`` entry allows no
    foreign origin (it is common behind proxies and would let every site in)."""
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin")
    if origin is None:
        return True
    try:
        parsed = urlsplit(origin.decode("latin1"))
        hostname = parsed.hostname
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https") or not hostname:
        return False
    if parsed.netloc.lower() == headers.get(b"host", b"").decode("latin1").lower():
        return True
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = DEBUG_HOSTS
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return validate_host(hostname, [host for host in allowed if host != "*"])
