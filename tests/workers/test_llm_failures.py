"""Each class of provider failure ends in the right job state, through the real worker."""

from __future__ import annotations

import uuid

import pytest

from bench.openai_sim import SimulatorHandle
from common.jobs.events import JobEvents
from common.platform.redis_client import make_redis
from tests.support.stack import Stack

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not


def ask(stack: Stack, message: str = "What is a ROS 2 node?") -> dict:
    headers = stack.signup()
    return stack.wait(headers, stack.submit(headers, message=message)["id"], timeout=90)


def test_server_errors_are_retried_and_the_job_completes(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    sim.update_config(fail_next=[500, 503])
    job = ask(openai_stack)
    assert job["status"] == "completed", job
    assert job["usage"]["total_tokens"] > 0
    statuses = [r["status"] for r in sim.log() if r["endpoint"] == "/v1/chat/completions"]
    assert statuses == [500, 503, 200]


def test_a_rate_limit_response_pauses_then_completes(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    sim.update_config(fail_next=[429])
    job = ask(openai_stack)
    assert job["status"] == "completed", job
    statuses = [r["status"] for r in sim.log() if r["endpoint"] == "/v1/chat/completions"]
    assert statuses == [429, 200]


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ({"insufficient_quota": True}, "insufficient_quota"),
        ({"fail_next": [401]}, "llm_auth_failed"),
        ({"fail_next": [400]}, "llm_bad_request"),
        ({"tpm": 300}, "request_too_large"),
    ],
)
def test_never_retried_errors_fail_the_job_at_once(
    openai_stack: Stack, sim: SimulatorHandle, config: dict, code: str
) -> None:
    sim.update_config(**config)
    job = ask(openai_stack)
    assert job["status"] == "failed"
    assert job["error"]["code"] == code
    assert job["error"]["message"]
    requests = [r for r in sim.log() if r["endpoint"] == "/v1/chat/completions"]
    assert len(requests) == 1, "a never-retry error must not be tried again"


def test_a_long_wait_requeues_the_job_instead_of_holding_the_worker(
    limited_stack: Stack, sim: SimulatorHandle
) -> None:
    headers = limited_stack.signup()
    first = limited_stack.submit(headers, message="What is a ROS 2 node?")
    second = limited_stack.submit(headers, message="What is a ROS 2 topic?")

    jobs = [limited_stack.wait(headers, job["id"], timeout=90) for job in (first, second)]

    assert [job["status"] for job in jobs] == ["completed", "completed"]
    events = JobEvents(make_redis(limited_stack.settings))
    requeued = [
        e.data
        for job in jobs
        for e in events.read(uuid.UUID(job["id"]))
        if e.event == "status" and e.data.get("status") == "queued" and "retry_in" in e.data
    ]
    assert len(requeued) >= 1, "one of the two jobs had to wait for capacity"
    assert requeued[0]["retry_in"] > 2
    assert sum(1 for r in sim.log() if r["status"] == 429) == 0


def test_job_metrics_and_counters_record_the_retries(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    sim.update_config(fail_next=[500, 429])
    job = ask(openai_stack)
    assert job["status"] == "completed"
    metrics = job["metrics"]
    assert metrics["llm_calls"] == 3 and metrics["retries"] == 2 and metrics["rate_limited"] == 1
    assert metrics["prompt_tokens"] > 0 and metrics["cost_usd"] > 0
    exposition = openai_stack.client.get("/metrics").get_data(as_text=True)
    assert 'bookchat_llm_errors_total{code="rate_limited"}' in exposition
    assert "bookchat_llm_rate_limited_total" in exposition
    assert 'bookchat_queue_depth{queue="chat"}' in exposition
