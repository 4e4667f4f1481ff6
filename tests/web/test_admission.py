"""Admission control: past its bounds the API refuses new questions with 503 `overloaded`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.jobs.admission import (
    Admission,
    Backlog,
    Overloaded,
    drain_rate,
    record_finished,
    retry_after_seconds,
)
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack, make_settings, start_stack
from tests.web.assertions import assert_unavailable

JOBS = "/v1/chat/jobs"
MAX_QUEUED = 3


@pytest.fixture(scope="module")
def full_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The API with no worker (jobs stay queued), a bound of 3 and no decision cache."""
    var_dir = tmp_path_factory.mktemp("admission")
    server = RedisServer(var_dir / "redis").start()
    settings = make_settings(
        var_dir, server.url, admission_max_queued=MAX_QUEUED, admission_cache_seconds=0
    )
    stack = start_stack(settings, with_worker=False)
    yield stack
    stack.stop()
    server.stop()


def test_past_the_queue_bound_a_submit_is_503_overloaded(full_stack: Stack) -> None:
    headers = full_stack.signup()
    client = full_stack.resources.redis
    for _ in range(60):  # a drain rate of one job a second over the last minute
        record_finished(client)
    for n in range(MAX_QUEUED):
        accepted = full_stack.client.post(JOBS, json={"message": f"q{n}"}, headers=headers)
        assert accepted.status_code == 202, accepted.get_json()

    refused = full_stack.client.post(JOBS, json={"message": "one too many"}, headers=headers)

    body = assert_unavailable(refused, "overloaded")
    assert body["queued"] == MAX_QUEUED
    assert int(refused.headers["Retry-After"]) == body["retry_after"]
    assert 1 <= body["retry_after"] <= 5  # one job over the bound, drained at 1/s
    still_three = full_stack.client.get("/v1/conversations", headers=headers).get_json()
    assert len(still_three["data"]) == MAX_QUEUED  # the refused question left no row


def test_the_oldest_jobs_wait_is_a_bound_too(full_stack: Stack, tmp_path: Path) -> None:
    settings = full_stack.settings.model_copy(
        update={"admission_max_queued": 10_000, "admission_max_wait_seconds": 0.2}
    )
    admission = Admission(settings)
    with full_stack.resources.sessions() as session:
        full_stack.client.post(JOBS, json={"message": "waits"}, headers=full_stack.signup())
        time.sleep(0.3)

        with pytest.raises(Overloaded) as refused:
            admission.check(session, full_stack.resources.redis)

    assert refused.value.extensions["oldest_wait_seconds"] >= 0.2
    assert "waited" in refused.value.detail


def test_the_decision_is_kept_for_the_cache_period(full_stack: Stack) -> None:
    settings = full_stack.settings.model_copy(
        update={"admission_max_queued": 10_000, "admission_cache_seconds": 30}
    )
    admission = Admission(settings)
    with full_stack.resources.sessions() as session:
        admission.check(session, full_stack.resources.redis)  # decided: admit
        admission.max_queued = 1  # the backlog is now past the bound...

        admission.check(session, full_stack.resources.redis)  # ...but the decision stands

        admission.cache_s = 0
        with pytest.raises(Overloaded):
            admission.check(session, full_stack.resources.redis)


def test_retry_after_is_the_time_to_drain_back_within_bounds() -> None:
    backlog = Backlog(queued=150, oldest_wait_s=10)

    assert retry_after_seconds(backlog, rate=1.0, max_queued=100, max_wait_s=300) == 50
    # At 0.1 jobs/s only 30 drain within a 300 s wait: 120 jobs over, 1200 s, capped.
    assert retry_after_seconds(backlog, rate=0.1, max_queued=100, max_wait_s=300) == 600
    assert retry_after_seconds(backlog, rate=0.0, max_queued=100, max_wait_s=300) == 60
    assert retry_after_seconds(Backlog(100, 0), rate=5.0, max_queued=100, max_wait_s=300) == 1


def test_the_drain_rate_counts_the_last_minute(full_stack: Stack) -> None:
    client = full_stack.resources.redis
    now = 2_000_000_000.0
    for offset in (0, 15, 35, 49):  # four within the last six 10 s buckets
        record_finished(client, now - offset)
    record_finished(client, now - 90)  # too old

    assert drain_rate(client, now) == pytest.approx(4 / 60)
