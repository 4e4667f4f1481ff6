"""Paid answers are never thrown away: Redis dies while the model streams, or just after it.

Real worker processes, a real redis-server killed with SIGKILL and started again on the same
port, the model simulator behind the OpenAI SDK. Every answer must complete, and the simulator
must have been asked once per job: a job whose answer was produced is never re-bought.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.platform.models import JobKind
from tests.support.faults import FaultStack, start_fault_stack, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
QUESTION = "What is a ROS 2 node?"
SELECTION = (
    "A ROS 2 node is a single process that performs computation. Nodes exchange messages over "
    "topics, offer services and actions, and are composed into larger systems."
)
JOBS = 4


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[FaultStack]:
    """A fresh deployment per test: each test kills its Redis."""
    stack = start_fault_stack(tmp_path)
    yield stack
    stack.stop()


def _model_calls(faults: FaultStack, marker: str) -> list[dict[str, Any]]:
    """The simulator's chat requests whose prompt carries the job's marker."""
    return [
        record
        for record in faults.sim.log()
        if record["endpoint"] == "/v1/chat/completions"
        and any(marker in m["content"] for m in record["messages"] or [])
    ]


def _streaming(faults: FaultStack, job_id: str) -> bool:
    events = faults.stack.resources.events.read(uuid.UUID(job_id))
    return any(event.event == "delta" for event in events)


@pytest.mark.parametrize("outage_s", [3, 30], ids=["3s", "30s"])
@pytest.mark.parametrize("moment", ["during", "after"])
def test_redis_killed_during_or_after_the_model_stream_loses_no_answer(
    faults: FaultStack, moment: str, outage_s: int
) -> None:
    headers = faults.stack.signup()
    faults.start_worker("payer", concurrency=JOBS)
    markers = [f"[job {n} {uuid.uuid4().hex[:8]}]" for n in range(JOBS)]
    jobs = [
        faults.stack.submit(headers, message=f"{QUESTION} {m}", selected_text=SELECTION)["id"]
        for m in markers
    ]
    wait_until(
        lambda: all(_streaming(faults, j) for j in jobs),
        90,
        f"the answers did not start streaming\n{faults.logs()}",
    )

    faults.redis.kill()
    if moment == "after":
        # Redis stays away until every model stream has ended: the tokens, the limiter, the
        # answer row and its events all meet a dead Redis.
        wait_until(
            lambda: all(
                any(r["streamed_to_end"] for r in _model_calls(faults, m)) for m in markers
            ),
            120,
            f"the model streams did not end\n{faults.logs()}",
        )
    time.sleep(outage_s)  # the outage itself, not a bound on anything
    faults.redis.start()

    finished = faults.wait_for(headers, jobs, timeout=240)

    for job, marker in zip(finished, markers, strict=True):
        assert job["status"] == "completed", (job, faults.logs())
        assert len(_model_calls(faults, marker)) == 1, (marker, faults.logs())
        assert faults.attempt_outcomes(JobKind.CHAT, job["id"]) == ["completed"]
        assert faults.streamed_answer(headers, job["id"]) == job["answer"]
