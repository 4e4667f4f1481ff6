"""LLMClient when the provider fails: retries, timeouts, requeues and the circuit breaker."""

from __future__ import annotations

import socket

import pytest
import redis

from bench.openai_sim import SimulatorHandle
from common.llm.errors import RetryLater
from common.llm.metrics import CallStats
from tests.common.llm.harness import build, policy_with


def test_server_errors_are_retried_until_success(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    h = build(sim, redis_client)
    sim.update_config(fail_next=[500, 503])
    stats = CallStats()
    deltas: list[str] = []

    completion = h.chat(stats, deltas)  # on_restart fails the test if it is called

    assert completion.text and "".join(deltas) == completion.text
    assert [r["status"] for r in h.requests()] == [500, 503, 200]
    assert (stats.llm_calls, stats.retries) == (3, 2)
    assert h.counted("errors_llm_unavailable") == 2
    assert h.counted("retries") == 2
    # Two jittered backoffs were asked for; the success cleared the circuit's failure count.
    assert len(h.sleep.calls) == 2
    assert stats.backoff_sleep_s == pytest.approx(sum(h.sleep.calls))
    assert not h.circuit.is_open()
    assert redis_client.get(h.circuit.failures_key) is None


def test_exhausted_retries_requeue_the_job(sim: SimulatorHandle, redis_client: redis.Redis) -> None:
    h = build(sim, redis_client, policy=policy_with(max_attempts=4, requeue_delay_s=10.0))
    sim.update_config(fail_next=[500] * 4)
    stats = CallStats()

    with pytest.raises(RetryLater) as caught:
        h.chat(stats)

    assert caught.value.delay == 10.0
    assert [r["status"] for r in h.requests()] == [500] * 4
    assert (stats.llm_calls, stats.retries) == (4, 3)
    # Four failures stay below the circuit's threshold of five.
    assert not h.circuit.is_open()
    assert h.counted("circuit_opened") == 0


def test_timeouts_are_retried_then_requeued(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    h = build(sim, redis_client, policy=policy_with(max_attempts=2), timeout=0.5)
    sim.update_config(timeout_rate=1.0, timeout_sleep_s=5)
    stats = CallStats()

    with pytest.raises(RetryLater):
        h.chat(stats)

    assert (stats.llm_calls, stats.retries) == (2, 1)
    assert h.counted("errors_llm_timeout") == 2
    assert len(h.requests()) <= 2  # the simulator logs a request only once its sleep ends


def test_an_unreachable_provider_is_retried_then_requeued(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = policy_with(max_attempts=2)
    h = build(sim, redis_client, policy=policy, base_url=f"http://127.0.0.1:{port}/v1")
    stats = CallStats()

    with pytest.raises(RetryLater):
        h.chat(stats)

    assert (stats.llm_calls, stats.retries) == (2, 1)
    assert h.counted("errors_llm_unreachable") == 2


def test_a_stream_cut_short_is_restarted_from_scratch(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    # One chunk a second against a 0.5 s read timeout: the stream stalls after its first delta.
    h = build(sim, redis_client, timeout=0.5)
    sim.update_config(per_token_s=1.0)
    deltas: list[str] = []
    restarts: list[int] = []

    def on_restart() -> None:
        restarts.append(len(deltas))
        deltas.clear()
        sim.update_config(per_token_s=0.0)  # the provider recovers for the retry

    stats = CallStats()
    completion = h.chat(stats, deltas, on_restart)

    assert restarts == [1]
    assert "".join(deltas) == completion.text
    assert (stats.llm_calls, stats.retries) == (2, 1)
    assert h.counted("errors_llm_timeout") == 1


def test_repeated_failures_open_the_circuit_and_stop_calls(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    h = build(sim, redis_client, policy=policy_with(max_attempts=5))
    sim.update_config(fail_next=[500] * 5)

    with pytest.raises(RetryLater):
        h.chat(CallStats())
    assert h.counted("circuit_opened") == 1
    assert h.circuit.is_open()

    stats = CallStats()
    with pytest.raises(RetryLater) as caught:
        h.chat(stats)

    assert 0 < caught.value.delay <= h.circuit.cooldown
    assert len(h.requests()) == 5
    assert stats.llm_calls == 0


def test_the_circuit_opening_mid_retries_stops_the_remaining_attempts(
    sim: SimulatorHandle, redis_client: redis.Redis
) -> None:
    h = build(sim, redis_client, policy=policy_with(max_attempts=8))
    sim.update_config(fail_next=[500] * 8)
    stats = CallStats()

    with pytest.raises(RetryLater) as caught:
        h.chat(stats)

    # Five failures open the circuit; the sixth attempt is held back, not sent.
    assert len(h.requests()) == 5
    assert stats.llm_calls == 5
    assert 0 < caught.value.delay <= h.circuit.cooldown
