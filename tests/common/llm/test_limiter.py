"""The shared GCRA limiter against a real Redis: bursts, waits, tokens, pauses and sharing."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from common.llm.limiter import Limits, RateLimiter, RequestTooLarge
from common.llm.provider_headers import RateLimitState

# 60 requests a minute is one a second; a 5 s burst holds 5 of them.
ONE_PER_SECOND = Limits(rpm=60, tpm=10**6, burst_seconds=5, headroom=1.0)
# 6000 tokens a minute is 100 a second; a 1000-token call takes 10 s of capacity.
TOKEN_BOUND = Limits(rpm=6000, tpm=6000, burst_seconds=10, headroom=1.0)


def new_limiter(redis_client: redis.Redis, limits: Limits) -> RateLimiter:
    """A limiter for a model name no other test uses."""
    return RateLimiter(redis_client, f"gpt-4o-mini-{uuid.uuid4().hex[:6]}", limits)


def probe(limiter: RateLimiter, tokens: int = 1) -> float:
    """The wait a call would face now; asserts it was refused (so nothing was reserved)."""
    reservation = limiter.reserve(tokens, max_wait=0)
    assert not reservation.granted, reservation
    return reservation.delay


def drain(limiter: RateLimiter, count: int, tokens: int = 1) -> None:
    """Take `count` immediate reservations."""
    for _ in range(count):
        reservation = limiter.reserve(tokens, max_wait=0)
        assert reservation.granted and reservation.delay == 0.0, reservation


def test_a_full_bucket_grants_the_burst_then_refuses(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)

    granted = [limiter.reserve(1, max_wait=0) for _ in range(5)]
    refused = limiter.reserve(1, max_wait=0)

    assert all(r.granted and r.delay == 0.0 for r in granted)
    assert not refused.granted
    assert 0.5 < refused.delay <= 1.1


def test_a_refused_reservation_reserves_nothing(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    drain(limiter, 5)

    first = probe(limiter)
    second = probe(limiter)

    # Had the first probe been charged, the second would wait about a second longer.
    assert second <= first
    assert first - second < 0.2


def test_a_wait_within_max_wait_is_granted_and_pushes_later_calls_back(
    redis_client: redis.Redis,
) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    drain(limiter, 5)

    waited = limiter.reserve(1, max_wait=10)
    later = limiter.reserve(1, max_wait=10)

    assert waited.granted and 0.5 < waited.delay <= 1.1
    assert later.granted and 1.5 < later.delay <= 2.1
    assert 2.5 < probe(limiter) <= 3.1


def test_tokens_bind_when_calls_are_large(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, TOKEN_BOUND)

    first = limiter.reserve(1000, max_wait=0)

    assert first.granted and first.delay == 0.0
    assert 9.0 < probe(limiter, 1000) <= 10.1
    # A 100-token call waits for its own second of tokens; the request bucket is nearly empty.
    assert 0.5 < probe(limiter, 100) <= 1.1


def test_a_call_above_the_per_minute_limit_can_never_run(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, TOKEN_BOUND)

    with pytest.raises(RequestTooLarge):
        limiter.reserve(6001, max_wait=3600)
    assert limiter.snapshot() == {"requests_tat": None, "tokens_tat": None, "pause_until": None}


def test_a_call_above_the_burst_runs_alone_on_an_empty_bucket(redis_client: redis.Redis) -> None:
    limits = Limits(rpm=6000, tpm=6000, burst_seconds=5, headroom=1.0, credit_window_seconds=0)
    limiter = new_limiter(redis_client, limits)

    # 3000 tokens is 30 s of capacity against a 5 s burst, but below the per-minute limit.
    big = limiter.reserve(3000, max_wait=0)

    assert big.granted and big.delay == 0.0
    assert 24.0 < probe(limiter, 1) <= 25.1


def test_headroom_aims_below_the_provider_limit(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, Limits(rpm=60, tpm=10**6, burst_seconds=5, headroom=0.5))

    # At half of 60 rpm a request takes 2 s, so a 5 s burst holds only 2.
    drain(limiter, 2)

    assert 0.5 < probe(limiter) <= 1.1


def test_reconcile_refunds_and_charges_the_token_bucket(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, TOKEN_BOUND)
    drain(limiter, 1, tokens=1000)
    before = probe(limiter, 1000)

    limiter.reconcile(estimated_tokens=1000, actual_tokens=200)
    refunded = probe(limiter, 1000)
    limiter.reconcile(estimated_tokens=200, actual_tokens=1200)
    charged = probe(limiter, 1000)

    assert 9.0 < before <= 10.1
    # 800 tokens back is 8 s of capacity at 100 tokens a second.
    assert 1.0 < refunded <= 2.1
    assert 11.0 < charged <= 12.1


def test_reconcile_with_the_estimate_right_changes_nothing(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, TOKEN_BOUND)
    drain(limiter, 1, tokens=1000)
    before = probe(limiter, 1000)

    limiter.reconcile(estimated_tokens=1000, actual_tokens=1000)

    assert before - 0.2 < probe(limiter, 1000) <= before


def test_a_pause_holds_every_call(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)

    left = limiter.pause(2.0, jitter=0)

    assert 1.9 < left <= 2.0
    assert 1.8 < probe(limiter) <= 2.0
    assert limiter.snapshot()["pause_until"] is not None


def test_a_shorter_pause_does_not_cut_a_longer_one(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    limiter.pause(5.0, jitter=0)

    left = limiter.pause(1.0, jitter=0)

    assert 4.5 < left <= 5.0
    assert 4.5 < probe(limiter) <= 5.0


def test_few_requests_left_at_the_provider_slows_the_limiter(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    drain(limiter, 1)

    limiter.observe(RateLimitState(remaining_requests=0, remaining_tokens=None))

    # The provider says the bucket is empty, so the next call waits a full request step.
    assert 0.5 < probe(limiter) <= 1.1


def test_few_tokens_left_at_the_provider_slows_the_limiter(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, TOKEN_BOUND)

    # Capacity is 1000 tokens; the provider has 200 left, so 800 are considered spent.
    limiter.observe(RateLimitState(remaining_tokens=200))

    assert 7.0 < probe(limiter, 1000) <= 8.1


def test_lots_left_at_the_provider_never_loosens_the_limiter(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    drain(limiter, 5)
    before = probe(limiter)

    limiter.observe(RateLimitState(remaining_requests=10_000, remaining_tokens=10**9))

    assert before - 0.2 < probe(limiter) <= before


def test_limiters_of_one_model_share_their_buckets(redis_client: redis.Redis) -> None:
    model = f"gpt-4o-mini-{uuid.uuid4().hex[:6]}"
    worker_a = RateLimiter(redis_client, model, ONE_PER_SECOND)
    worker_b = RateLimiter(redis_client, model, ONE_PER_SECOND)
    other_model = new_limiter(redis_client, ONE_PER_SECOND)

    drain(worker_a, 3)
    drain(worker_b, 2)
    worker_a.pause(0.5, jitter=0)

    assert 0.5 < probe(worker_b) <= 1.1
    assert 0.5 < probe(worker_a) <= 1.1
    first, second = other_model.reserve(1, max_wait=0), other_model.reserve(1, max_wait=0)
    assert first.granted and second.granted and first.delay == second.delay == 0.0


def test_concurrent_workers_never_exceed_capacity_plus_refill(redis_client: redis.Redis) -> None:
    limits = Limits(rpm=600, tpm=10**6, burst_seconds=2, headroom=1.0)
    model = f"gpt-4o-mini-{uuid.uuid4().hex[:6]}"
    capacity = 20  # 2 s of 10 requests a second
    threads, per_thread = 8, 25
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        limiter = RateLimiter(redis_client, model, limits)
        start.wait()
        mine = sum(limiter.reserve(1, max_wait=0).granted for _ in range(per_thread))
        with lock:
            granted.append(mine)

    began = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - began

    assert len(granted) == threads
    assert capacity <= sum(granted) <= capacity + 10 * elapsed + 1


def test_a_ticket_books_the_slot_once_and_hands_it_over(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    drain(limiter, 5)
    ticket = uuid.uuid4().hex

    booked = limiter.reserve(1, max_wait=0, ticket=ticket)
    again = limiter.reserve(1, max_wait=0, ticket=ticket)
    other = limiter.reserve(1, max_wait=0, ticket=uuid.uuid4().hex)

    assert booked.booked and not booked.granted and 0.5 < booked.delay <= 1.1
    # Asking again with the same ticket keeps the same slot instead of booking another.
    assert again.booked and again.delay <= booked.delay
    # A second caller is booked behind the first: about a second later.
    assert other.booked and other.delay - booked.delay > 0.8
    time.sleep(booked.delay)
    used = limiter.reserve(1, max_wait=0.2, ticket=ticket)
    assert used.granted and not used.booked


def test_a_fresh_bucket_spends_only_the_burst_until_the_provider_confirms_more(
    redis_client: redis.Redis,
) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    drain(limiter, 4)
    last = limiter.reserve(1, max_wait=0)
    assert last.granted and last.mark is not None
    assert probe(limiter) > 0.5

    # The provider answered the last call with 50 of its 60 requests a minute left.
    limiter.observe(RateLimitState(remaining_requests=50), mark=last.mark)

    drain(limiter, 50)
    assert probe(limiter) > 0.5


def test_calls_reserved_after_the_reading_are_not_counted_twice(
    redis_client: redis.Redis,
) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    measured = limiter.reserve(1, max_wait=0)
    drain(limiter, 3)  # sent after `measured`, so not in the provider's figure yet
    assert measured.mark is not None

    limiter.observe(RateLimitState(remaining_requests=20), mark=measured.mark)

    drain(limiter, 17)
    assert probe(limiter) > 0.5


def test_the_refill_since_the_reading_counts_as_credit(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    measured = limiter.reserve(1, max_wait=0)
    assert measured.mark is not None

    # Read 5 s ago with nothing left: 5 requests have come back since, at one a second.
    limiter.observe(RateLimitState(remaining_requests=0), age=5.0, mark=measured.mark)

    drain(limiter, 5)
    assert 0.5 < probe(limiter) <= 1.1


def test_a_ticket_keeps_the_mark_of_its_booking(redis_client: redis.Redis) -> None:
    limiter = new_limiter(redis_client, ONE_PER_SECOND)
    drain(limiter, 5)
    ticket = uuid.uuid4().hex
    booked = limiter.reserve(1, max_wait=0, ticket=ticket)
    drain_after = limiter.reserve(1, max_wait=10)  # booked behind the ticket

    used = limiter.reserve(1, max_wait=5, ticket=ticket)

    assert booked.booked and used.granted and used.mark is not None
    assert drain_after.mark is not None
    assert used.mark.requests == drain_after.mark.requests - 1


def test_without_a_credit_window_the_provider_never_loosens_the_bucket(
    redis_client: redis.Redis,
) -> None:
    limits = Limits(rpm=60, tpm=10**6, burst_seconds=5, headroom=1.0, credit_window_seconds=0)
    limiter = new_limiter(redis_client, limits)
    drain(limiter, 4)
    last = limiter.reserve(1, max_wait=0)
    assert last.mark is not None
    before = probe(limiter)

    limiter.observe(RateLimitState(remaining_requests=50), mark=last.mark)

    assert before - 0.2 < probe(limiter) <= before
