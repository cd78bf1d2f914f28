"""The live sets split into shards over a real three-master Redis Cluster (``REDIS_SHARDS``).

The storage contract itself runs sharded too: ``redis-sharded`` is one of the ``backend_name``
fixture's backends (tests/conftest.py).
"""

from __future__ import annotations

import base64
import time

import pytest
import redis
from django.test import override_settings
from redis.crc import key_slot

from active_users.backends import Presence, get_backend
from active_users.backends.shards import SLOTS, tags
from tests.bulk import bulk_touch

USERS = 3000


def entry(n: int, user: int | None = None) -> Presence:
    uid = str(n if user is None else user)
    return Presence(f'["{uid}","s{n}","10.0.0.1","u{uid}"]', uid, f"session-{n}")


def members_per_master(cluster_url: str, prefix: str) -> list[int]:
    """How many sorted-set members of the prefix's keys each master holds."""
    with redis.Redis.from_url(cluster_url) as any_node:
        slots = any_node.execute_command("CLUSTER", "SLOTS")
    masters = sorted({(bytes(master[0]).decode(), int(master[1])) for _, _, master, *_ in slots})
    found = []
    for host, port in masters:
        client = redis.Redis(host=host, port=port)
        total = 0
        for key in client.scan_iter(match=f"{{{prefix}*", count=1000):
            if key.endswith((b":entries", b":users")):
                total += client.zcard(key)
        found.append(total)
        client.close()
    return found


@pytest.mark.parametrize("count", [1, 3, 16, 100, 1024])
def test_each_shards_tag_lands_in_its_own_range_of_slots(count: int) -> None:
    found = tags("active_users", count)
    assert len(set(found)) == count
    if count == 1:
        assert found == ("{active_users}",)  # the keys of every unsharded release
    for shard, tag in enumerate(found):
        assert key_slot(tag.encode()) * count // SLOTS == shard  # the shard-th N-th of the slots


def test_sixteen_shards_spread_thousands_of_users_over_every_master(
    redis_sharded_settings: dict[str, object], redis_cluster_url: str
) -> None:
    now = time.time()
    bulk_touch((entry(n) for n in range(USERS)), now, batch=1000)
    per_master = members_per_master(
        redis_cluster_url, str(redis_sharded_settings["ACTIVE_USERS_KEY_PREFIX"])
    )
    assert sum(per_master) == 2 * USERS  # an entry and a user row each
    assert len(per_master) == 3
    assert all(share > 0.2 * 2 * USERS for share in per_master), per_master
    counts = get_backend().counts(now=now)
    assert (counts.entries, counts.users, counts.visitors) == (USERS, USERS, 0)


def test_one_shard_keeps_every_user_on_one_master(
    redis_cluster_settings: dict[str, object], redis_cluster_url: str
) -> None:
    bulk_touch((entry(n) for n in range(300)), time.time())
    per_master = members_per_master(
        redis_cluster_url, str(redis_cluster_settings["ACTIVE_USERS_KEY_PREFIX"])
    )
    assert sorted(per_master) == [0, 0, 600]


def test_sharded_counts_are_exact(redis_sharded_settings: dict[str, object]) -> None:
    now = time.time()
    people = [entry(n) for n in range(USERS)]
    people += [entry(USERS + n, user=n) for n in range(0, USERS, 3)]  # a second browser
    people += [Presence(f"visitor-{n}") for n in range(500)]
    stale = [entry(10_000 + n) for n in range(200)]
    bulk_touch(people, now)
    bulk_touch(stale, now - 60)
    backend = get_backend()
    counts = backend.counts(now=now)
    assert (counts.entries, counts.users, counts.visitors) == (USERS + USERS // 3, USERS, 500)
    assert backend.count(now=now) == USERS + USERS // 3


@pytest.mark.parametrize("page_size", [7, 100])
def test_paging_through_everyone_sharded_gives_each_entry_once_newest_first(
    redis_sharded_settings: dict[str, object], page_size: int
) -> None:
    now = time.time()
    backend = get_backend()
    # 3,000 entries in groups of 50 sharing a score, so ties cross every page and shard edge.
    for group in range(USERS // 50):
        backend.touch_many(
            [(entry(n), now - 10 + group * 0.01) for n in range(group * 50, (group + 1) * 50)]
        )
    seen: list[tuple[str, float]] = []
    cursor = None
    while True:
        page = backend.page(page_size, cursor, now=now)
        assert len(page.items) <= page_size
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(cursor) < 60  # three numbers, whatever the number of shards
    assert len(seen) == USERS
    assert len({member for member, _ in seen}) == USERS
    assert [score for _, score in seen] == sorted((score for _, score in seen), reverse=True)
    assert [member for member, _ in seen] == backend.members(now=now)


def test_every_entry_at_one_score_pages_exactly(redis_sharded_settings: dict[str, object]) -> None:
    now = time.time()
    backend = get_backend()
    backend.touch_many([(entry(n), now - 1) for n in range(500)])
    seen, cursor = [], None
    while True:
        page = backend.page(33, cursor, now=now)
        seen += [member for member, _ in page.items]
        if not (cursor := page.next_cursor):
            break
    assert sorted(seen) == sorted(entry(n).member for n in range(500))
    assert len(seen) == 500


async def test_async_pages_and_counts_match_the_sync_ones_sharded(
    redis_sharded_settings: dict[str, object],
) -> None:
    now = time.time()
    backend = get_backend()
    await backend.atouch(entry(1), now=now - 2)
    await backend.atouch(entry(2), now=now - 1)
    await backend.atouch(Presence("visitor"), now=now - 1)
    first = await backend.apage(1, now=now)
    rest = await backend.apage(1, first.next_cursor, now=now)
    assert [m for m, _ in first.items + rest.items] == [entry(2).member, entry(1).member]
    assert rest.next_cursor is None
    assert await backend.acount(now=now) == 2
    assert (await backend.acounts(now=now)).visitors == 1
    await backend.aclose()  # type: ignore[attr-defined]


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        raw_cursor("[1.0,16]"),  # the unsharded shape, refused with 16 shards
        raw_cursor("[1.0,16,0]"),  # shard 16 of 0..15
        raw_cursor("[1.0,-1,0]"),
        raw_cursor("[1.0,0,-1]"),
        raw_cursor("[Infinity,0,0]"),
        raw_cursor("[NaN,0,0]"),
        raw_cursor("[1.0,0,99999999999]"),
        "A" * 500,
    ],
)
def test_a_sharded_cursor_that_was_not_given_out_is_refused(
    redis_sharded_settings: dict[str, object], cursor: str
) -> None:
    with pytest.raises(ValueError):
        get_backend().page(10, cursor)


def test_logging_out_and_deleting_a_user_remove_their_entries_in_their_shard(
    redis_sharded_settings: dict[str, object],
) -> None:
    now = time.time()
    backend = get_backend()
    bulk_touch([entry(n) for n in range(200)] + [entry(500, user=7)], now)
    backend.remove_session("session-3")
    backend.remove_user("7")
    members = backend.members(now=now)
    assert entry(3).member not in members
    assert entry(7).member not in members and entry(500, user=7).member not in members
    assert len(members) == 198
    assert backend.seen(["7", "8", "nobody"]) == {"8": now}


def test_changing_the_shard_count_starts_from_new_keys(
    redis_sharded_settings: dict[str, object],
) -> None:
    now = time.time()
    bulk_touch([entry(n) for n in range(50)], now)
    with override_settings(ACTIVE_USERS_REDIS_SHARDS=8):
        backend = get_backend()
        assert backend.count(now=now) == 0  # the old keys are not read; they age out
        backend.touch(entry(1), now=now)
        assert backend.count(now=now) == 1
        backend.clear()
