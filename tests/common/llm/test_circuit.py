"""The Redis circuit breaker: trips after a run of failures, lets one probe through, recovers."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from common.llm.circuit import CircuitBreaker, CircuitOpen

COOLDOWN = 0.3


@pytest.fixture
def circuit(redis_client: redis.Redis) -> CircuitBreaker:
    """A circuit no other test uses, with a short cool-down."""
    return CircuitBreaker(redis_client, f"test-{uuid.uuid4().hex[:8]}", 5, COOLDOWN)


def trip(circuit: CircuitBreaker) -> None:
    """Record failures until the circuit opens."""
    opened = [circuit.record_failure() for _ in range(circuit.threshold)]
    assert opened == [False] * (circuit.threshold - 1) + [True]


def wait_out_the_cooldown(circuit: CircuitBreaker) -> None:
    """Sleep until the circuit would let a probe through."""
    time.sleep(circuit.cooldown + 0.05)


def passes(circuit: CircuitBreaker) -> bool:
    """Whether before_call lets this caller through."""
    try:
        circuit.before_call()
    except CircuitOpen:
        return False
    return True


def test_a_new_circuit_is_closed(circuit: CircuitBreaker) -> None:
    assert not circuit.is_open()
    assert all(passes(circuit) for _ in range(3))


def test_four_failures_keep_it_closed_and_the_fifth_opens_it(circuit: CircuitBreaker) -> None:
    assert [circuit.record_failure() for _ in range(4)] == [False] * 4
    assert not circuit.is_open()
    assert passes(circuit)

    assert circuit.record_failure() is True

    assert circuit.is_open()
    with pytest.raises(CircuitOpen) as caught:
        circuit.before_call()
    assert 0 < caught.value.retry_in <= COOLDOWN


def test_a_success_resets_the_count_of_failures(circuit: CircuitBreaker) -> None:
    for _ in range(4):
        circuit.record_failure()

    circuit.record_success()

    assert [circuit.record_failure() for _ in range(4)] == [False] * 4
    assert not circuit.is_open()


def test_circuits_of_different_names_are_independent(
    redis_client: redis.Redis, circuit: CircuitBreaker
) -> None:
    other = CircuitBreaker(redis_client, f"test-{uuid.uuid4().hex[:8]}", 5, COOLDOWN)

    trip(circuit)

    assert not other.is_open()
    assert passes(other)


def test_after_the_cooldown_exactly_one_concurrent_caller_probes(
    circuit: CircuitBreaker,
) -> None:
    trip(circuit)
    wait_out_the_cooldown(circuit)
    callers = 6
    start = threading.Barrier(callers)
    outcomes: list[bool] = []
    refusals: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        start.wait()
        try:
            circuit.before_call()
            passed = True
        except CircuitOpen as exc:
            passed = False
            with lock:
                refusals.append(exc.retry_in)
        with lock:
            outcomes.append(passed)

    pool = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert sorted(outcomes) == [False] * (callers - 1) + [True]
    assert all(retry_in > 0 for retry_in in refusals)


def test_a_second_caller_is_held_while_the_probe_runs(circuit: CircuitBreaker) -> None:
    trip(circuit)
    wait_out_the_cooldown(circuit)

    assert passes(circuit)
    assert not passes(circuit)


def test_a_successful_probe_closes_the_circuit(circuit: CircuitBreaker) -> None:
    trip(circuit)
    wait_out_the_cooldown(circuit)
    assert passes(circuit)

    circuit.record_success()

    assert not circuit.is_open()
    assert all(passes(circuit) for _ in range(3))
    # The failure count starts again from zero.
    assert [circuit.record_failure() for _ in range(4)] == [False] * 4


def test_a_failed_probe_opens_the_circuit_again(circuit: CircuitBreaker) -> None:
    trip(circuit)
    wait_out_the_cooldown(circuit)
    assert passes(circuit)

    assert circuit.record_failure() is True

    assert circuit.is_open()
    with pytest.raises(CircuitOpen) as caught:
        circuit.before_call()
    assert 0 < caught.value.retry_in <= COOLDOWN
    # After another cool-down, a new probe is allowed.
    wait_out_the_cooldown(circuit)
    assert passes(circuit)
    assert not passes(circuit)


def test_waiters_learn_when_a_probe_last_ended(circuit: CircuitBreaker) -> None:
    trip(circuit)
    with pytest.raises(CircuitOpen) as before_any_probe:
        circuit.before_call()
    wait_out_the_cooldown(circuit)
    assert passes(circuit)  # the probe
    started = time.time()
    circuit.record_failure()  # it fails: the circuit opens again

    with pytest.raises(CircuitOpen) as after_the_probe:
        circuit.before_call()

    assert before_any_probe.value.probed_at is None
    assert after_the_probe.value.probed_at is not None
    assert after_the_probe.value.probed_at >= started
