"""LLMClient through the real SDK, a real Redis and the simulator: success, limits, 429s."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from bench.openai_sim import SimulatorHandle
from common.llm.errors import LLMError, RetryLater
from common.llm.limiter import Limits
from common.llm.metrics import CallStats
from tests.common.llm.harness import MAX_TOKENS, build, policy_with, restart_forbidden


def test_a_success_streams_and_accounts(sim: SimulatorHandle, redis_client: redis.Redis) -> None:
    h = build(sim, redis_client)
    stats = CallStats()
    deltas: list[str] = []

    completion = h.chat(stats, deltas)

    assert len(deltas) > 1 and "".join(deltas) == completion.text
    assert completion.model == h.model
    [record] = h.requests()
    assert record["admitted"] and record["status"] == 200
    assert record["max_tokens"] == MAX_TOKENS
    assert (completion.prompt_tokens, completion.completion_tokens) == (
        record["prompt_tokens"],
        record["completion_tokens"],
    )
    assert (stats.llm_calls, stats.retries, stats.rate_limited) == (1, 0, 0)
    assert stats.prompt_tokens == completion.prompt_tokens > 0
    assert stats.completion_tokens == completion.completion_tokens > 0
    assert stats.cost_usd > 0
    assert stats.limiter_wait_s == 0.0 and h.sleep.calls == []
    assert h.counted("requests") == 1
    assert h.counted("tokens") == completion.prompt_tokens + completion.completion_tokens


def test_a_short_429_pauses_every_worker_then_succeeds(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    h = build(sim, redis_client)
    sim.update_config(fail_next=[429])
    stats = CallStats()

    h.chat(stats)

    assert [r["status"] for r in h.requests()] == [429, 200]
    assert (stats.rate_limited, stats.retries, stats.llm_calls) == (1, 1, 2)
    assert h.limiter.snapshot()["pause_until"] is not None
    # The simulator advises retry-after-ms 200; the retry's reservation waited that pause out.
    assert 0.15 < stats.limiter_wait_s <= 0.25
    assert any(0.15 < s <= 0.25 for s in h.sleep.calls)
    assert stats.backoff_sleep_s == 0.0
    assert h.counted("errors_rate_limited") == 1
    # A rate limit is not an outage.
    assert redis_client.get(h.circuit.failures_key) is None


def test_a_long_429_hands_the_job_back(sim: SimulatorHandle, redis_client: redis.Redis) -> None:
    # The provider allows one request a minute; our own limiter believes in far more.
    h = build(sim, redis_client)
    sim.update_config(rpm=1)
    h.chat(CallStats())
    stats = CallStats()

    with pytest.raises(RetryLater) as caught:
        h.chat(stats)

    # About 60 s advised, plus up to 10% jitter; the retry was never sent.
    assert 50.0 < caught.value.delay <= 66.1
    assert [r["status"] for r in h.requests()] == [200, 429]
    assert (stats.rate_limited, stats.llm_calls) == (1, 1)
    assert h.limiter.snapshot()["pause_until"] is not None


def test_a_long_pause_hands_the_job_back_without_calling(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    h = build(sim, redis_client)
    h.limiter.pause(30, jitter=0)
    stats = CallStats()

    with pytest.raises(RetryLater) as caught:
        h.chat(stats)

    assert 29.0 < caught.value.delay <= 30.0
    assert h.requests() == []
    assert stats.llm_calls == 0
    assert h.counted("requeues_for_limit") == 1


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ({"insufficient_quota": True}, "insufficient_quota"),
        ({"fail_next": [401]}, "llm_auth_failed"),
        ({"fail_next": [400]}, "llm_bad_request"),
        # Our limiter's tpm is large: only the provider finds 600 max_tokens too large.
        ({"tpm": 500}, "request_too_large"),
    ],
)
def test_never_retry_errors_fail_at_once(
    sim: SimulatorHandle, redis_client: redis.Redis, config: dict[str, Any], code: str
) -> None:
    h = build(sim, redis_client, policy=policy_with(max_attempts=4))
    sim.update_config(**config)
    stats = CallStats()
    deltas: list[str] = []

    with pytest.raises(LLMError) as caught:
        h.chat(stats, deltas)

    assert (caught.value.code, caught.value.retryable) == (code, False)
    assert caught.value.message
    assert len(h.requests()) == 1
    assert (stats.llm_calls, stats.retries, stats.rate_limited) == (1, 0, 0)
    assert deltas == [] and h.sleep.calls == []
    # Not a provider outage and not a rate limit: neither the circuit nor the pause moved.
    assert redis_client.get(h.circuit.failures_key) is None
    assert h.limiter.snapshot()["pause_until"] is None
    assert h.counted(f"errors_{code}") == 1


def test_a_call_our_limiter_can_never_admit_is_not_sent(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    h = build(sim, redis_client, limits=Limits(rpm=6000, tpm=500, burst_seconds=10, headroom=1.0))

    with pytest.raises(LLMError) as caught:
        h.chat(CallStats())

    assert (caught.value.code, caught.value.retryable) == ("request_too_large", False)
    assert h.requests() == []


def test_the_estimate_is_reconciled_with_the_reported_prompt(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    # 6000 tokens a minute is 10 ms a token. Thirty one-letter messages are estimated at
    # 30 * (1 + 4) + 3 = 153 prompt tokens; the provider reports 30.
    limits = Limits(rpm=6000, tpm=6000, burst_seconds=10, headroom=1.0, credit_window_seconds=0)
    h = build(sim, redis_client, limits=limits)
    roles = ["user", "assistant"] * 15
    messages = [{"role": role, "content": "x"} for role in roles[:-1]]
    messages.append({"role": "user", "content": "y"})

    completion = h.client.stream_chat(
        h.model, messages, MAX_TOKENS, lambda _: None, restart_forbidden, CallStats()
    )

    ahead = float(h.limiter.snapshot()["tokens_tat"]) - h.redis_now()
    # The provider charges the prompt plus max_tokens at admission; so does our bucket now.
    assert completion.prompt_tokens == 30
    assert 6.3 - 0.5 < ahead <= 6.3 + 0.01


def test_provider_headers_tighten_the_shared_limiter(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    # We think we may send 5 requests at once; the provider has room for 3 a minute.
    h = build(sim, redis_client, limits=Limits(rpm=60, tpm=10**6, burst_seconds=5, headroom=1.0))
    sim.update_config(rpm=3)

    h.chat(CallStats())

    ahead = float(h.limiter.snapshot()["requests_tat"]) - h.redis_now()
    # 2 requests left of 3 means 3 of our 5 one-second slots are taken, not just 1.
    assert ahead > 2.5


def test_embeddings_come_back_in_order_through_the_limiter(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    limits = Limits(rpm=6000, tpm=600, burst_seconds=10, headroom=1.0, credit_window_seconds=0)
    h = build(sim, redis_client, limits=limits, model_prefix="text-embedding-3-small")
    stats = CallStats()

    before = h.redis_now()
    vectors = h.client.embed(h.model, ["a", "b", "c"], stats)
    after = h.redis_now()

    # Three one-letter texts are three tokens: 0.3 s at 10 tokens a second, booked from the
    # moment of the call (however long the machine took around it).
    booked_at = float(h.limiter.snapshot()["tokens_tat"]) - 0.3
    assert before - 1e-3 <= booked_at <= after + 1e-3
    assert [len(v) for v in vectors] == [sim.config.embedding_dim] * 3
    assert len({tuple(v) for v in vectors}) == 3
    assert h.client.embed(h.model, ["c"], CallStats()) == [vectors[2]]
    assert h.client.embed(h.model, ["b"], CallStats()) == [vectors[1]]
    assert (stats.llm_calls, stats.prompt_tokens, stats.completion_tokens) == (1, 3, 0)
    assert stats.cost_usd > 0
    assert [r["endpoint"] for r in h.requests()] == ["/v1/embeddings"] * 3


def test_the_providers_stored_credit_is_spent_without_waiting(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    # Our bucket starts with 5 one-second slots; the provider holds a full minute of 60.
    h = build(sim, redis_client, limits=Limits(rpm=60, tpm=10**6, burst_seconds=5, headroom=1.0))
    sim.update_config(rpm=60)

    for _ in range(12):
        h.chat(CallStats())

    assert h.sleep.calls == [] and h.counted("limiter_waits") == 0
    assert [r["status"] for r in h.requests()] == [200] * 12
