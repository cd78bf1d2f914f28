"""Many touches at once through the backend's own batch write (the write-behind flush's)."""

from __future__ import annotations

from collections.abc import Iterable

from active_users.backends import Presence, get_backend


def bulk_touch(presences: Iterable[Presence], now: float, batch: int = 5000) -> int:
    backend = get_backend()
    done, chunk = 0, []
    for presence in presences:
        chunk.append((presence, now))
        if len(chunk) == batch:
            backend.touch_many(chunk)
            done, chunk = done + len(chunk), []
    if chunk:
        backend.touch_many(chunk)
    return done + len(chunk)
