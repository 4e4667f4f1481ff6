"""The operator's tools against real workers: dead letters, bulk retry, single retry and cancel."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.platform.models import JobKind
from tests.support.faults import FaultStack, start_fault_stack, wait_until
from tests.support.sse import read_events
from tests.workers.test_faults import PROVIDER_RETRIES, submit_many

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[FaultStack]:
    """A deployment whose jobs give up on the model after a few seconds."""
    stack = start_fault_stack(tmp_path, llm_max_job_wait_seconds=4, **PROVIDER_RETRIES)
    yield stack
    stack.stop()


def bulk_retry(faults: FaultStack, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    """Start a bulk retry and wait for its reprocess job to finish."""
    response = faults.stack.client.post("/v1/admin/jobs/retry", json=body, headers=admin)
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    wait_until(
        lambda: _admin_job(faults, admin, job_id)["status"] == "completed",
        60,
        f"the bulk retry did not finish\n{faults.logs()}",
    )
    return dict(_admin_job(faults, admin, job_id)["job"])


def _admin_job(faults: FaultStack, admin: dict[str, str], job_id: str) -> dict[str, Any]:
    return dict(faults.stack.client.get(f"/v1/admin/jobs/{job_id}", headers=admin).get_json())


def test_dead_letters_of_an_outage_are_cleared_by_one_bulk_retry(outage: FaultStack) -> None:
    reader, admin = outage.stack.signup(), outage.stack.admin()
    outage.sim.update_config(error_503_rate=1.0)
    outage.start_worker("worker", queues="chat,ingest,reprocess", concurrency=3)
    jobs = submit_many(outage, reader, 3)
    for job in outage.wait_for(reader, jobs, timeout=60):
        assert (job["status"], job["error"]["code"]) == ("failed", "llm_unavailable")
    dlq = outage.stack.client.get("/v1/admin/dlq", headers=admin).get_json()
    assert {entry["id"] for entry in dlq["data"]} == set(jobs)
    assert all(entry["dead_letter"] for entry in dlq["data"])
    overview = outage.stack.client.get("/v1/admin/queues", headers=admin).get_json()
    queues = {queue["name"]: queue for queue in overview["data"]}
    assert queues["chat"]["dead_letters"] == 3
    outage.sim.update_config(error_503_rate=0.0)

    counted = bulk_retry(outage, admin, error_code="llm_unavailable", since="1h", dry_run=True)
    assert (counted["matched"], counted["requeued"], counted["would_requeue"]) == (3, 0, 3)
    first = bulk_retry(outage, admin, error_code="llm_unavailable", since="1h")
    finished = outage.wait_for(reader, jobs, timeout=90)
    second = bulk_retry(outage, admin, error_code="llm_unavailable", since="1h")

    assert (first["matched"], first["requeued"], first["skipped"]) == (3, 3, 0)
    assert all(job["status"] == "completed" for job in finished)
    assert (second["matched"], second["requeued"]) == (0, 0)
    history = _admin_job(outage, admin, jobs[0])["history"]
    assert [a["outcome"] for a in history][-1] == "completed"
    assert "failed" in [a["outcome"] for a in history]
    audit = outage.stack.client.get("/v1/admin/audit?action=jobs.bulk_retry", headers=admin)
    assert [e["outcome"] for e in audit.get_json()["data"]] == ["ok", "ok", "ok"]


def test_a_retried_job_streams_its_new_attempt(outage: FaultStack) -> None:
    reader, admin = outage.stack.signup(), outage.stack.admin()
    outage.sim.update_config(error_503_rate=1.0)
    outage.start_worker("worker", concurrency=1)
    [job_id] = submit_many(outage, reader, 1)
    outage.wait_for(reader, [job_id], timeout=60)
    outage.sim.update_config(error_503_rate=0.0)

    failed = read_events(outage.stack, reader, job_id)
    assert failed[-1]["event"] == "error"

    response = outage.stack.client.post(f"/v1/admin/jobs/{job_id}/retry", headers=admin)
    assert response.status_code == 200, response.get_json()
    [done] = outage.wait_for(reader, [job_id], timeout=60)

    assert done["status"] == "completed"
    events = read_events(outage.stack, reader, job_id)
    kinds = [e["event"] for e in events]
    # A retry starts a fresh stream: the failed attempt's error is gone, the answer ends it.
    assert events[0]["data"] == {"status": "queued", "reason": "retried by an operator"}
    assert "error" not in kinds and kinds.count("done") == 1 and kinds[-1] == "done"
    assert outage.streamed_answer(reader, job_id) == done["answer"]
    # A reader resuming from the failed stream's last id reads the whole new stream.
    resumed = read_events(outage.stack, reader, job_id, last_event_id=failed[-1]["id"])
    assert resumed == events
    again = outage.stack.client.post(f"/v1/admin/jobs/{job_id}/retry", headers=admin)
    assert again.status_code == 409


def test_an_operator_cancels_a_running_answer(outage: FaultStack) -> None:
    reader, admin = outage.stack.signup(), outage.stack.admin()
    outage.sim.update_config(per_token_s=0.3)
    outage.start_worker("worker", concurrency=1)
    [job_id] = submit_many(outage, reader, 1)
    wait_until(
        lambda: any(
            e.event == "delta" for e in outage.stack.resources.events.read(uuid.UUID(job_id))
        ),
        60,
        f"the answer did not start\n{outage.logs()}",
    )

    response = outage.stack.client.post(f"/v1/admin/jobs/{job_id}/cancel", headers=admin)
    cancelled_at = len(outage.stack.resources.events.read(uuid.UUID(job_id)))
    time.sleep(2)  # the worker notices at its next delta

    assert response.status_code == 200
    assert outage.job_row(job_id).status == "cancelled"
    events = outage.stack.resources.events.read(uuid.UUID(job_id))
    late_deltas = [e for e in events[cancelled_at:] if e.event == "delta"]
    assert len(late_deltas) <= 1
    assert outage.attempt_outcomes(JobKind.CHAT, job_id) == ["cancelled"]


def test_a_cancelled_job_retried_by_an_operator_runs_to_completion(outage: FaultStack) -> None:
    reader, admin = outage.stack.signup(), outage.stack.admin()
    outage.start_worker("worker", concurrency=1)
    [job_id] = submit_many(outage, reader, 1)
    cancel = outage.stack.client.post(f"/v1/chat/jobs/{job_id}/cancel", headers=reader)
    assert cancel.status_code == 200

    retry = outage.stack.client.post(f"/v1/admin/jobs/{job_id}/retry", headers=admin)
    [done] = outage.wait_for(reader, [job_id], timeout=60)

    assert retry.status_code == 200
    assert done["status"] == "completed", outage.attempt_outcomes(JobKind.CHAT, job_id)
    assert outage.streamed_answer(reader, job_id) == done["answer"]
