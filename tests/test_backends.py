"""The storage contract, run against every backend (see the ``backend_name`` fixture)."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from active_users.backends import BaseBackend, Presence, get_backend


def entry(n: int, user: int | None = None) -> Presence:
    return Presence(
        f'["{user if user is not None else n}","s{n}","127.0.0.1","u{n}"]',
        str(user if user is not None else n),
    )


@pytest.fixture
def backend(backend_name: str) -> BaseBackend:
    return get_backend()


def test_a_touched_entry_is_counted_and_listed(backend: BaseBackend) -> None:
    backend.touch(entry(1))
    assert backend.count() == 1
    assert backend.members() == [entry(1).member]


def test_touching_the_same_entry_again_keeps_one_entry(backend: BaseBackend) -> None:
    backend.touch(entry(1))
    backend.touch(entry(1))
    assert backend.counts().entries == 1


def test_two_sessions_of_one_user_are_two_entries_and_one_distinct_user(
    backend: BaseBackend,
) -> None:
    backend.touch(entry(1, user=7))
    backend.touch(entry(2, user=7))
    backend.touch(entry(3, user=8))
    counts = backend.counts()
    assert (counts.entries, counts.users, counts.visitors) == (3, 2, 0)


def test_visitors_are_counted_apart_from_users(backend: BaseBackend) -> None:
    backend.touch(entry(1))
    backend.touch(Presence("visitor-hash-a"))
    backend.touch(Presence("visitor-hash-b"))
    counts = backend.counts()
    assert (counts.entries, counts.users, counts.visitors) == (1, 1, 2)
    assert backend.members() == [entry(1).member]


def test_an_entry_older_than_key_expire_is_not_counted(backend: BaseBackend) -> None:
    now = time.time()
    backend.touch(entry(1), now=now - 21)
    backend.touch(entry(2), now=now - 19)
    backend.touch(Presence("old-visitor"), now=now - 30)
    assert backend.count(now=now) == 1
    assert backend.counts(now=now).visitors == 0
    assert backend.members(now=now) == [entry(2).member]
    assert backend.page(10, now=now).items[0][0] == entry(2).member


def test_pages_walk_every_active_entry_once_newest_first(backend: BaseBackend) -> None:
    now = time.time()
    # 250 entries, in groups of 7 sharing one timestamp, to cross page edges inside a tie.
    for n in range(250):
        backend.touch(entry(n), now=now - 10 + (n // 7) * 0.01)
    seen: list[tuple[str, float]] = []
    cursor = None
    pages = 0
    while True:
        page = backend.page(100, cursor, now=now)
        seen.extend(page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert sorted(m for m, _ in seen) == sorted(entry(n).member for n in range(250))
    stamps = [s for _, s in seen]
    assert stamps == sorted(stamps, reverse=True)


def test_a_cursor_that_was_not_given_out_is_refused(backend: BaseBackend) -> None:
    with pytest.raises(ValueError, match="cursor"):
        backend.page(10, "not-a-cursor")


def test_remove_forgets_at_once(backend: BaseBackend) -> None:
    backend.touch(entry(1))
    backend.touch(entry(2))
    backend.remove(entry(1))
    assert backend.members() == [entry(2).member]


def test_clear_empties_the_store(backend: BaseBackend) -> None:
    backend.touch(entry(1))
    backend.touch(Presence("visitor"))
    backend.clear()
    assert backend.counts().entries == backend.counts().visitors == 0


def test_clear_expired_deletes_only_expired_entries(backend: BaseBackend) -> None:
    now = time.time()
    backend.touch(entry(1), now=now - 60)
    backend.touch(entry(2), now=now)
    backend.clear_expired(now=now)
    assert backend.members(now=now - 100) == [entry(2).member]


@pytest.mark.django_db(transaction=True)
async def test_async_twins_answer_like_the_sync_methods(backend: BaseBackend) -> None:
    await backend.atouch(entry(1, user=5))
    await backend.atouch(entry(2, user=5))
    await backend.atouch(Presence("visitor"))
    counts = await backend.acounts()
    assert (counts.entries, counts.users, counts.visitors) == (2, 1, 1)
    assert await backend.acount() == 2
    assert sorted(await backend.amembers()) == sorted([entry(1, 5).member, entry(2, 5).member])
    first = await backend.apage(1)
    second = await backend.apage(1, first.next_cursor)
    assert {first.items[0][0], second.items[0][0]} == {entry(1, 5).member, entry(2, 5).member}
    await backend.aremove(entry(1, user=5))
    assert await backend.acount() == 1
    await backend.aclear()
    assert await backend.acount() == 0
    if hasattr(backend, "aclose"):
        await backend.aclose()
    await sync_to_async(connections.close_all)()


def test_other_keys_in_the_redis_database_are_never_counted_or_touched(redis_settings) -> None:
    import redis

    prefix = redis_settings["ACTIVE_USERS_KEY_PREFIX"]
    foreign = {f"{prefix}:entries": "plain", "au:1:abc:127.0.0.1:bob": "0", f"{prefix}x": "1"}
    with redis.Redis.from_url(str(redis_settings["ACTIVE_USERS_REDIS_URL"])) as client:
        client.mset(foreign)
        try:
            get_backend().touch(entry(1))
            assert get_backend().count() == 1
            get_backend().clear()
            get_backend().clear_expired()
            assert client.mget(list(foreign)) == [v.encode() for v in foreign.values()]
        finally:
            client.delete(*foreign)


def test_seen_between_walks_more_than_a_batch_with_ties_once_each_oldest_first(
    backend: BaseBackend,
) -> None:
    # 2,500 users at three times, so that batches of 1,000 end inside runs of equal times.
    now = time.time()
    times = [now - 30, now - 20, now - 10]
    backend.touch_many([(entry(n), times[n % 3]) for n in range(2500)])
    seen: list[tuple[str, float]] = []
    cursor, batches = None, 0
    while True:
        rows, cursor = backend.seen_between(now - 40, now, 1000, cursor)
        seen += rows
        batches += 1
        if cursor is None:
            break
    assert batches == 3
    assert sorted(uid for uid, _ in seen) == sorted(str(n) for n in range(2500))
    assert [round(t) for _, t in seen] == sorted(round(t) for _, t in seen)
    assert {uid: round(t) for uid, t in seen} == {str(n): round(times[n % 3]) for n in range(2500)}
    # The window's bounds: (since, until].
    inside, _ = backend.seen_between(now - 20, now - 10, 5000)
    assert {uid for uid, _ in inside} == {str(n) for n in range(2500) if n % 3 == 2}


def test_a_write_that_arrives_late_with_an_older_time_does_not_move_an_entry_back(
    backend: BaseBackend,
) -> None:
    # Processes flush their buffers in any order: the store keeps each entry's latest time.
    now = time.time()
    backend.touch_many([(entry(1, user=7), now - 1), (entry(2, user=8), now - 30)])
    backend.touch_many([(entry(1, user=7), now - 10), (entry(2, user=8), now - 2)])
    backend.touch(entry(1, user=7), now=now - 5)
    assert backend.seen(["7", "8"]) == {
        "7": pytest.approx(now - 1, abs=1e-3),
        "8": pytest.approx(now - 2, abs=1e-3),
    }
    assert dict(backend.page(10, now=now).items) == {
        entry(1, user=7).member: pytest.approx(now - 1, abs=1e-3),
        entry(2, user=8).member: pytest.approx(now - 2, abs=1e-3),
    }


def test_a_batch_with_a_step_leaves_a_time_another_process_wrote_moments_before(
    backend_name: str, backend: BaseBackend
) -> None:
    # N processes refresh one person: on the database a flush leaves the rows that moved
    # less than ``min_step`` before its time (no new row version), and moves them once the
    # step is reached; Redis keeps the exact latest time.
    now = time.time()
    backend.touch_many([(entry(1, user=7), now - 10)])
    backend.touch_many([(entry(1, user=7), now - 9)], min_step=2.5)
    after_a_small_step = (backend.seen(["7"])["7"], backend.page(10, now=now).items[0][1])
    backend.touch_many([(entry(1, user=7), now - 7)], min_step=2.5)
    after_the_step = (backend.seen(["7"])["7"], backend.page(10, now=now).items[0][1])
    expected = now - 10 if backend_name == "database" else now - 9
    assert after_a_small_step == (pytest.approx(expected, abs=1e-3),) * 2
    assert after_the_step == (pytest.approx(now - 7, abs=1e-3),) * 2


def test_a_batch_write_keeps_every_character_and_microsecond(backend: BaseBackend) -> None:
    # What a flush carries goes through one JSON parameter on PostgreSQL: quotes,
    # backslashes, escapes, line separators, astral characters and JSON-looking text must
    # come back as they went in, with their times to the microsecond.
    odd = ['"', "\\", "\\u0041", "a\nb", "\u2028", "😀", "ﬁ", '{"x": [1]}', "é" * 100]
    now = round(time.time(), 6)
    items = [
        (Presence(json.dumps([str(n), text]), str(n), f"{n:032x}"), now - n * 0.000001)
        for n, text in enumerate(odd)
    ]
    backend.touch_many(items)
    listed = dict(backend.page(100, now=now).items)
    assert listed.keys() == {presence.member for presence, _ in items}
    for presence, when in items:
        assert listed[presence.member] == pytest.approx(when, abs=1e-6)


def test_the_last_seen_flush_writes_every_user_of_several_batches(
    backend: BaseBackend, django_user_model
) -> None:
    from active_users.last_seen import flush_last_seen
    from active_users.models import LastSeen

    django_user_model.objects.bulk_create(
        [django_user_model(username=f"flush{n}") for n in range(1200)]
    )
    ids = list(django_user_model.objects.values_list("pk", flat=True))
    now = time.time()
    backend.touch_many([(entry(n, user=pk), now - 5) for n, pk in enumerate(ids)])
    assert flush_last_seen(force=True, now=now) == 1200
    assert LastSeen.objects.count() == 1200
    assert {
        round(t.timestamp()) for t in LastSeen.objects.values_list("last_activity", flat=True)
    } == {round(now - 5)}


def test_history_samples_and_uniques_round_trip(backend: BaseBackend) -> None:
    from active_users.backends import Sample
    from active_users.backends.base import day_of

    minute = int(time.time() // 60) * 60
    backend.record_sample(Sample(minute - 120, 3, 2, 1))
    backend.record_sample(Sample(minute - 60, 5, 4, 2))
    assert backend.samples(False, minute - 180, minute) == [
        Sample(minute - 120, 3, 2, 1),
        Sample(minute - 60, 5, 4, 2),
    ]
    hours = backend.samples(True, minute - 7200, minute)
    assert max(h.entries for h in hours) == 5
    now = time.time()
    backend.touch_many([(entry(n, user=n % 4), now) for n in range(8)] + [(Presence("v1"), now)])
    today = day_of(now).date
    uniques = backend.uniques(today, 1, 1, [7])
    assert uniques.days[-1][1:] == (4, 1)
    assert uniques.windows[7] == (4, 1)
    backend.clear_history()
    assert backend.samples(False, minute - 180, minute) == []


def test_every_method_has_an_async_twin() -> None:
    import inspect

    public = [
        name
        for name, member in vars(BaseBackend).items()
        if inspect.isfunction(member) and not name.startswith(("_", "a"))
    ]
    assert len(public) >= 19
    for name in public:
        twin = getattr(BaseBackend, f"a{name}", None)
        assert twin is not None and inspect.iscoroutinefunction(twin), name


@pytest.mark.django_db(transaction=True)
async def test_the_async_twins_of_the_batch_and_last_seen_methods(backend: BaseBackend) -> None:
    now = time.time()
    await backend.atouch_many([(entry(1, user=7), now - 3), (entry(2, user=8), now - 2)])
    assert await backend.aseen(["7", "8", "9"]) == pytest.approx({"7": now - 3, "8": now - 2})
    rows, cursor = await backend.aseen_between(now - 10, now, 10)
    assert [uid for uid, _ in rows] == ["7", "8"] and cursor is None
    await backend.aremove_user("7")
    assert await backend.aseen(["7"]) == {}
    await backend.aremove_session("")
    assert await backend.aclear_expired(now + 3600) >= 0
    await backend.aclear_history()
    await backend.aclose()
    await sync_to_async(connections.close_all)()


def test_a_catch_up_claim_is_held_apart_from_the_flush_claim(backend: BaseBackend) -> None:
    now = time.time()
    assert backend.claim_flush(60, now) == 0.0  # a periodic flush holds its interval
    backend.flush_done(now - 10)
    assert backend.claim_catch_up(60, now) == now - 10  # readers still catch up
    assert backend.claim_catch_up(60, now + 1) is None  # once per hold, fleet-wide
    assert backend.claim_flush(60, now + 1) is None
