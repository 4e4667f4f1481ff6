"""Numbers an operator can trust: waits apart from attempts, the circuit's probe, dead workers."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from common.jobs.worker_heartbeats import TTL_SECONDS
from common.llm.circuit import CircuitBreaker
from common.platform.models import JobKind
from tests.support.faults import start_fault_stack, wait_until
from tests.workers.test_faults import submit_many

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_a_job_waiting_on_the_circuit_gets_its_probe_before_the_wait_bound(
    tmp_path: Path,
) -> None:
    # The bound (3 s) is far shorter than the circuit's cool-down (8 s): the job must still
    # wait for the probe, which the healed provider answers.
    faults = start_fault_stack(
        tmp_path,
        llm_max_job_wait_seconds=3,
        llm_call_attempts=2,
        llm_backoff_max_seconds=0.2,
        llm_requeue_delay_seconds=1.0,
        llm_circuit_threshold=2,
        llm_circuit_cooldown_seconds=8,
    )
    try:
        headers = faults.stack.signup()
        faults.sim.update_config(error_503_rate=1.0)
        faults.start_worker("probing", concurrency=1)
        [job_id] = submit_many(faults, headers, 1)
        circuit = CircuitBreaker(faults.stack.resources.redis, "openai")
        wait_until(circuit.is_open, 60, f"the circuit did not open\n{faults.logs()}")
        faults.sim.update_config(error_503_rate=0.0)

        [done] = faults.wait_for(headers, [job_id], timeout=90)

        assert done["status"] == "completed", done["error"]
        # One run failed on the provider, one answered; the claims that met the open circuit
        # only waited.
        assert (done["attempts"], done["waits"] > 0) == (2, True), done
        assert faults.attempt_outcomes(JobKind.CHAT, job_id) == ["requeued", "completed"]
        assert faults.streamed_answer(headers, job_id) == done["answer"]
    finally:
        faults.stop()


def test_readyz_notices_a_dead_worker_within_the_heartbeat_bound(tmp_path: Path) -> None:
    faults = start_fault_stack(tmp_path)
    try:
        faults.start_worker("only", concurrency=1)

        def workers_ok() -> bool:
            return bool(
                faults.stack.client.get("/readyz?detail=true").get_json()["checks"]["workers"]["ok"]
            )

        assert workers_ok()
        faults.kill_worker("only", signal.SIGKILL)

        # A beat every 5 s, each kept for TTL_SECONDS (20 s): a killed worker is gone by then.
        wait_until(lambda: not workers_ok(), TTL_SECONDS + 2, "/readyz still counts the worker")
        response = faults.stack.client.get("/readyz?detail=true")
        assert response.status_code == 503
        assert response.get_json()["checks"]["workers"]["queues"]["chat"] == []
    finally:
        faults.stop()
