"""Entries: what is recorded about one active browser session of a user.

A project adds fields by subclassing :class:`ActiveUserEntry` and naming the class in
``ACTIVE_USERS_KEY_CLASS``, exactly as with django-active-users.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from active_users.requests import get_client_ip, hash_session_key, stored_ip

if TYPE_CHECKING:
    from django.http import HttpRequest
    from typing_extensions import Self


class AbstractActiveUserEntry:
    """Base of entry classes.

    ``fields`` names the values kept for each entry; subclasses fill them in
    :meth:`create_from_request`. Two requests whose values are all equal are one entry.
    Values are stored as strings and come back exactly as stored, whatever characters they
    hold.
    """

    fields: tuple[str, ...] = ()

    def __init__(self, **values: Any) -> None:
        for field in self.fields:
            setattr(self, field, values.get(field, ""))

    @classmethod
    def create_from_request(cls, request: HttpRequest) -> Self:
        """Build the entry for an authenticated request. Extension point."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, str]:
        """The entry as ``{field: value}`` with string values."""
        return {field: _text(getattr(self, field, "")) for field in self.fields}

    def dump(self) -> str:
        """The stored form: a JSON array of the values in ``fields`` order."""
        values = [_text(getattr(self, field, "")) for field in self.fields]
        stored = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        try:
            stored.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: escape them, JSON brings them back
            stored = json.dumps(values, separators=(",", ":"))
        return stored

    @classmethod
    def load(cls, stored: str | bytes) -> Self:
        """Rebuild an entry from :meth:`dump` output."""
        values = json.loads(stored)
        return cls(**dict(zip(cls.fields, values)))

    @classmethod
    def key_to_dict(cls, key: str | bytes) -> dict[str, str]:
        return cls.load(key).to_dict()

    create_from_key = load

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.dump())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


class ActiveUserEntry(AbstractActiveUserEntry):
    """Default entry: the user, a keyed hash of the session key, the client IP, the username."""

    fields = ("user_id", "session_id", "ip", "username")

    @classmethod
    def create_from_request(cls, request: HttpRequest) -> Self:
        instance = cls()
        user = request.user
        if user.pk is not None:
            instance.user_id = str(user.pk)  # type: ignore[attr-defined]
            instance.username = user.get_username()  # type: ignore[attr-defined]
            instance.ip = stored_ip(request) or ""  # type: ignore[attr-defined]
        session = getattr(request, "session", None)
        if session is not None:
            instance.session_id = hash_session_key(session.session_key)  # type: ignore[attr-defined]
        return instance

    get_client_ip = staticmethod(get_client_ip)


def _text(value: Any) -> str:
    return "" if value is None else str(value)
