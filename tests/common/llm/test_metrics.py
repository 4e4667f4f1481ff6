"""The LLM layer's shared counters are best-effort: a Redis outage never fails a paid call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from bench.openai_sim import SimulatorHandle
from common.llm.metrics import CallStats, Counters
from tests.common.llm.harness import build


@pytest.fixture
def unreachable() -> Iterator[redis.Redis]:
    """A client of a Redis that is not there (connections are refused)."""
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    yield client
    client.close()


def test_counters_on_an_unreachable_redis_do_not_raise(unreachable: redis.Redis) -> None:
    counters = Counters(unreachable)

    counters.add("requests")
    counters.add_tokens(120, 30)
    counters.add("retries")  # skipped for a moment after the failure, still no error


def test_a_call_whose_counters_cannot_be_shared_still_returns_its_answer(
    sim: SimulatorHandle, redis_client: redis.Redis, unreachable: redis.Redis
) -> None:
    h = build(sim, redis_client)
    h.client.counters = Counters(unreachable)
    stats = CallStats()

    completion = h.chat(stats)

    assert completion.text and len(h.requests()) == 1
    assert stats.completion_tokens == completion.completion_tokens > 0
