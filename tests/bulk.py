"""Many touches at once through the Redis backend's own touch script, pipelined."""

from __future__ import annotations

from collections.abc import Iterable

from active_users.backends import Presence, get_backend


def bulk_touch(presences: Iterable[Presence], now: float, batch: int = 5000) -> int:
    backend = get_backend()
    client = backend.client
    if hasattr(client, "get_node_from_key"):  # a Cluster pipeline may not send EVALSHA
        client = client.get_node_from_key(backend.entries_key).redis_connection
    pipe = client.pipeline(transaction=False)
    done = 0
    for presence in presences:
        keys, args = backend._touch_args(presence, now)
        backend._touch_script(keys=keys, args=args, client=pipe)
        done += 1
        if done % batch == 0:
            pipe.execute()
    pipe.execute()
    return done
