"""One watchdog leads at a time: two contenders, each with its own client, on a real Redis."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from workers.watchdog import Leadership

# A lease runs from the moment `hold()` returned True until the call's start plus the TTL: the
# lock's expiry was set after the call started, so nobody else can hold it before then. The
# slack only absorbs clock rounding; a lease extended by the wrong holder overlaps by far more.
SLACK_S = 0.002


@pytest.fixture
def key() -> str:
    """A leader key of this test's own."""
    return f"test:watchdog:leader:{uuid.uuid4().hex}"


@pytest.fixture
def clients(redis_url: str) -> Iterator[list[redis.Redis]]:
    """Three clients, as three worker processes would have."""
    made = [redis.Redis.from_url(redis_url) for _ in range(3)]
    yield made
    for client in made:
        client.close()


def test_contenders_never_lead_at_the_same_time(clients: list[redis.Redis], key: str) -> None:
    ttl = 0.01
    leases: dict[int, list[tuple[float, float]]] = {n: [] for n in range(len(clients))}
    go, stop = threading.Barrier(len(clients)), threading.Event()

    def contend(n: int) -> None:
        leader, pauses = Leadership(clients[n], f"w{n}", ttl, key=key), random.Random(n)
        go.wait()
        while not stop.is_set():
            started = time.monotonic()
            held, now = leader.hold(), time.monotonic()
            if held and now < started + ttl:  # else it lapsed before we knew: no lease
                leases[n].append((now, started + ttl))
            # Sometimes past the TTL, as a process paused by a slow pass or the scheduler.
            time.sleep(pauses.uniform(0, 1.5 * ttl))

    threads = [threading.Thread(target=contend, args=(n,)) for n in leases]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join()

    assert sum(1 for held in leases.values() if held) >= 2, "the lead never changed hands"
    overlaps = [
        (a, b)
        for n, mine in leases.items()
        for m, theirs in leases.items()
        if n < m
        for a in mine
        for b in theirs
        if a[0] < b[1] - SLACK_S and b[0] < a[1] - SLACK_S
    ]
    assert not overlaps, f"two led at once {len(overlaps)} times, e.g. {overlaps[:3]}"


def test_the_other_leads_once_the_leader_stops_renewing(
    clients: list[redis.Redis], key: str
) -> None:
    ttl = 0.5
    first, second = (
        Leadership(clients[0], "first", ttl, key),
        Leadership(clients[1], "second", ttl, key),
    )
    assert first.hold()
    for _ in range(8):  # two TTLs of renewals: the lead stays put
        time.sleep(ttl / 4)
        renewed_at = time.monotonic()
        assert first.hold()
        assert not second.hold()

    # `first` stops renewing (a process that hung or died): `second` takes over, not before.
    deadline = time.monotonic() + 10
    while not second.hold():
        assert time.monotonic() < deadline, "the lead was never taken over"
        time.sleep(0.01)
    assert time.monotonic() >= renewed_at + ttl - SLACK_S
    assert clients[1].get(key).startswith(b"second:")  # type: ignore[union-attr]

    assert not first.hold(), "the old leader came back and led beside the new one"
    assert second.hold()
    second.step_down()  # a clean stop hands the lead over at once
    assert first.hold()
    first.step_down()
    assert clients[0].get(key) is None
