"""Jobs are never lost, stranded or doubled: real workers killed, Redis killed, the model down."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.book.ingest.chunking import chunk_document
from common.book.ingest.documents import parse_markdown
from common.book.retrieval.store import TextbookIndex, make_qdrant
from common.jobs.queue import CHAT_QUEUE, CHAT_REPEATS_QUEUE, waiting_job_ids
from common.jobs.repeat_lane import repeat_hint_key, write_repeat_hint
from common.platform.models import JobKind
from tests.support.faults import FaultStack, start_fault_stack, wait_until
from tests.support.sse import read_events
from tests.support.stack import SAMPLE_TEXTBOOK
from workers.answer_cache import index_version

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
QUESTION = "What is a ROS 2 node?"
SELECTION = (
    "A ROS 2 node is a single process that performs computation. Nodes exchange messages over "
    "topics, offer services and actions, and are composed into larger systems."
)


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[FaultStack]:
    """A fresh deployment per test: each test breaks something."""
    stack = start_fault_stack(tmp_path)
    yield stack
    stack.stop()


def submit_many(
    faults: FaultStack, headers: dict[str, str], count: int, queue: str = CHAT_QUEUE
) -> list[str]:
    """Submit questions about a selection (answered without an index) and return their ids.

    `queue`: CHAT_REPEATS_QUEUE sends them through the fast lane, as if each were a repeat
    whose answer is stored (its hint is written first).
    """
    if queue == CHAT_REPEATS_QUEUE:
        client = faults.stack.resources.redis
        for n in range(count):
            hint = repeat_hint_key(f"{QUESTION} ({n})", SELECTION, None)
            write_repeat_hint(client, hint, index_version(client), 600)
    return [
        faults.stack.submit(headers, message=f"{QUESTION} ({n})", selected_text=SELECTION)["id"]
        for n in range(count)
    ]


@pytest.mark.parametrize("queue", [CHAT_QUEUE, CHAT_REPEATS_QUEUE])
def test_a_worker_killed_mid_answer_hands_its_jobs_to_another(
    faults: FaultStack, queue: str
) -> None:
    headers = faults.stack.signup()
    faults.start_worker("doomed", concurrency=4)
    jobs = submit_many(faults, headers, 4, queue)
    wait_until(
        lambda: (
            all(faults.job_row(j).status == "in_progress" for j in jobs)
            and all(any(e["event"] == "delta" for e in _events_so_far(faults, j)) for j in jobs)
        ),
        60,
        f"the answers did not start streaming\n{faults.logs()}",
    )

    faults.kill_worker("doomed", signal.SIGKILL)
    faults.start_worker("survivor", concurrency=4)
    finished = faults.wait_for(headers, jobs, timeout=120)

    for job in finished:
        assert job["status"] == "completed", job
        assert job["attempts"] == 2
        assert faults.attempt_outcomes(JobKind.CHAT, job["id"]) == ["lost", "completed"]
        # The stream holds attempt 1's partial text, a reset, then attempt 2's whole answer.
        events = read_events(faults.stack, headers, job["id"])
        assert [e["data"]["attempt"] for e in events if e["event"] == "reset"] == [2]
        assert faults.streamed_answer(headers, job["id"]) == job["answer"]


def test_a_warm_shutdown_hands_running_jobs_back_at_once(faults: FaultStack) -> None:
    headers = faults.stack.signup()
    faults.start_worker("leaving", concurrency=2)
    jobs = submit_many(faults, headers, 2)
    wait_until(
        lambda: all(faults.job_row(j).status == "in_progress" for j in jobs),
        60,
        f"the jobs did not start\n{faults.logs()}",
    )

    faults.kill_worker("leaving", signal.SIGTERM)

    for job_id in jobs:
        row = faults.job_row(job_id)
        assert row.status == "queued"
        assert faults.attempt_outcomes(JobKind.CHAT, job_id) == ["handed_back"]
    faults.start_worker("next", concurrency=2)
    for job in faults.wait_for(headers, jobs, timeout=60):
        assert job["status"] == "completed"
        assert faults.streamed_answer(headers, job["id"]) == job["answer"]


def test_a_redis_outage_of_three_seconds_delays_jobs_without_failing_them(
    faults: FaultStack,
) -> None:
    headers = faults.stack.signup()
    faults.start_worker("steady", concurrency=2)
    jobs = submit_many(faults, headers, 6)  # two running, four waiting in the broker
    wait_until(
        lambda: sum(faults.job_row(j).status == "in_progress" for j in jobs) == 2,
        60,
        f"no job started\n{faults.logs()}",
    )

    faults.redis.kill()
    time.sleep(3)
    faults.redis.start()

    for job in faults.wait_for(headers, jobs, timeout=150):
        assert job["status"] == "completed", (job, faults.logs())
        assert faults.streamed_answer(headers, job["id"]) == job["answer"]


def test_jobs_queued_across_a_redis_restart_all_complete(faults: FaultStack) -> None:
    headers = faults.stack.signup()
    jobs = submit_many(faults, headers, 5)  # no worker yet: they wait in the broker

    faults.redis.stop()
    faults.redis.start()
    faults.start_worker("after", concurrency=4)

    for job in faults.wait_for(headers, jobs, timeout=90):
        assert job["status"] == "completed"
        assert job["attempts"] == 1


def _events_so_far(faults: FaultStack, job_id: str) -> list[dict[str, str]]:
    return [{"event": e.event} for e in faults.stack.resources.events.read(uuid.UUID(job_id))]


PROVIDER_RETRIES: dict[str, Any] = {
    "llm_call_attempts": 2,
    "llm_backoff_max_seconds": 0.2,
    "llm_requeue_delay_seconds": 1.0,
    "llm_circuit_cooldown_seconds": 1.0,
}


def test_a_provider_down_past_the_wait_bound_fails_every_job_visibly(tmp_path: Path) -> None:
    faults = start_fault_stack(tmp_path, llm_max_job_wait_seconds=6, **PROVIDER_RETRIES)
    try:
        headers = faults.stack.signup()
        faults.sim.update_config(error_503_rate=1.0)
        faults.start_worker("waiting", concurrency=2)
        jobs = submit_many(faults, headers, 4)

        finished = faults.wait_for(headers, jobs, timeout=90)

        for job in finished:
            assert job["status"] == "failed"
            assert job["error"]["code"] == "llm_unavailable"
            assert faults.attempt_outcomes(JobKind.CHAT, job["id"])[-1] == "failed"
            events = read_events(faults.stack, headers, job["id"])
            assert events[-1]["event"] == "error"
            assert events[-1]["data"]["code"] == "llm_unavailable"
    finally:
        faults.stop()


def test_a_provider_down_briefly_delays_jobs_that_then_complete(tmp_path: Path) -> None:
    faults = start_fault_stack(tmp_path, **PROVIDER_RETRIES)
    try:
        headers = faults.stack.signup()
        faults.sim.update_config(error_503_rate=1.0)
        faults.start_worker("patient", concurrency=2)
        jobs = submit_many(faults, headers, 4)
        wait_until(
            lambda: all(_put_back(faults, j) for j in jobs),
            60,
            f"the jobs were not put back to wait\n{faults.logs()}",
        )

        faults.sim.update_config(error_503_rate=0.0)

        for job in faults.wait_for(headers, jobs, timeout=90):
            assert job["status"] == "completed"
            assert faults.attempt_outcomes(JobKind.CHAT, job["id"])[-1] == "completed"
            assert faults.streamed_answer(headers, job["id"]) == job["answer"]
    finally:
        faults.stop()


def test_a_question_asked_before_the_first_index_waits_for_it(faults: FaultStack) -> None:
    headers = faults.stack.signup()
    faults.start_worker("early", concurrency=2)
    job = faults.stack.submit(headers, message=QUESTION)
    wait_until(
        lambda: faults.job_row(job["id"]).waits > 0,
        30,
        f"the job did not wait for the index\n{faults.logs()}",
    )
    waiting = [
        e["data"]
        for e in _events_so_far_with_data(faults, job["id"])
        if e["event"] == "status" and e["data"].get("status") == "queued" and "reason" in e["data"]
    ]
    assert "index" in waiting[0]["reason"]

    faults.stack.ingest(SAMPLE_TEXTBOOK)
    [done] = faults.wait_for(headers, [job["id"]], timeout=60)

    assert done["status"] == "completed"
    assert done["citations"], done
    assert "does not cover" not in done["answer"]
    # Waiting for the index is not an attempt: one run answered it, after waits counted apart.
    assert (done["attempts"], done["waits"] > 0) == (1, True), done
    assert faults.attempt_outcomes(JobKind.CHAT, job["id"]) == ["completed"]


def _put_back(faults: FaultStack, job_id: str) -> bool:
    """Whether the job went back to wait: a run that failed, or a claim that only waited."""
    outcomes = faults.attempt_outcomes(JobKind.CHAT, job_id)
    return "requeued" in outcomes or faults.job_row(job_id).waits > 0


def _events_so_far_with_data(faults: FaultStack, job_id: str) -> list[dict[str, Any]]:
    events = faults.stack.resources.events.read(uuid.UUID(job_id))
    return [{"event": e.event, "data": e.data} for e in events]


def write_book(folder: Path, pages: int = 20, sections: int = 4) -> Path:
    """A synthetic textbook big enough that an ingest takes several seconds."""
    for page in range(pages):
        body = [f"# Page {page}\n"]
        for section in range(sections):
            words = " ".join(f"term{page}x{section}w{n}" for n in range(120))
            body.append(f"## Section {section} of page {page}\n\n{words}.\n")
        (folder / f"page-{page:02d}.md").write_text("\n".join(body))
    return folder


def test_a_worker_killed_mid_ingest_leaves_one_complete_index(faults: FaultStack) -> None:
    book = faults.settings.var_dir / "book"
    book.mkdir()
    write_book(book)
    faults.start_worker("doomed", queues="ingest", concurrency=1)
    admin = faults.stack.admin()
    response = faults.stack.client.post("/v1/admin/ingest", json={"path": str(book)}, headers=admin)
    job_id = response.get_json()["id"]
    wait_until(
        lambda: (
            faults.stack.client.get(f"/v1/admin/ingest/{job_id}", headers=admin).get_json()[
                "files_seen"
            ]
            >= 3
        ),
        120,
        f"the ingest did not make progress\n{faults.logs()}",
    )

    faults.kill_worker("doomed", signal.SIGKILL)
    faults.start_worker("survivor", queues="ingest", concurrency=1)
    wait_until(
        lambda: (
            faults.stack.client.get(f"/v1/admin/ingest/{job_id}", headers=admin).get_json()[
                "status"
            ]
            in ("completed", "failed")
        ),
        180,
        f"the ingest did not finish\n{faults.logs()}",
    )
    job = faults.stack.client.get(f"/v1/admin/ingest/{job_id}", headers=admin).get_json()
    faults.kill_worker("survivor", signal.SIGTERM)  # local-mode Qdrant admits one process

    assert job["status"] == "completed", job
    assert (job["files_total"], job["files_failed"]) == (20, 0)
    assert faults.attempt_outcomes(JobKind.INGEST, job_id) == ["lost", "completed"]
    index = TextbookIndex(make_qdrant(faults.settings), faults.settings.qdrant_collection, "", 0)
    sources = [payload["source"] for payload in index._payloads(index.alias, ["source"])]
    expected = sum(
        len(chunk_document(parse_markdown(page.read_text(), page.name, "/")))
        for page in book.glob("*.md")
    )
    assert len(sources) == job["chunks_written"] == expected
    assert sorted(set(sources)) == [f"page-{page:02d}.md" for page in range(20)]


@pytest.mark.parametrize("queue", [CHAT_QUEUE, CHAT_REPEATS_QUEUE])
def test_a_job_whose_message_vanished_from_the_broker_is_sent_again(
    faults: FaultStack, queue: str
) -> None:
    headers = faults.stack.signup()
    jobs = submit_many(faults, headers, 2, queue)  # no worker yet: they wait in the broker
    assert waiting_job_ids(faults.stack.resources.celery, queue) == set(jobs)
    faults.stack.resources.redis.delete(queue)  # as if Redis lost them in a crash

    faults.start_worker("finder", concurrency=2)

    for job in faults.wait_for(headers, jobs, timeout=60):
        assert job["status"] == "completed"
        assert job["attempts"] == 1


def test_a_job_waiting_in_the_fast_lane_is_not_taken_for_lost(faults: FaultStack) -> None:
    """The watchdog's broker scan reads both chat lists: it re-sends only the message lost."""
    headers = faults.stack.signup()
    waiting = submit_many(faults, headers, 2, CHAT_REPEATS_QUEUE)
    lost = faults.stack.submit(headers, message="A question whose message is lost")["id"]
    celery = faults.stack.resources.celery
    assert waiting_job_ids(celery, CHAT_REPEATS_QUEUE) == set(waiting)
    faults.stack.resources.redis.delete(CHAT_QUEUE)  # only the chat queue's message is lost

    faults.start_worker("watcher", queues="ingest")  # runs the watchdog, takes no chat job
    wait_until(
        lambda: lost in waiting_job_ids(celery, CHAT_QUEUE),
        60,
        f"the lost job was not sent again\n{faults.logs()}",
    )

    # The same scan saw the older fast-lane jobs waiting and left them where they were.
    assert waiting_job_ids(celery, CHAT_QUEUE) == {lost}
    assert waiting_job_ids(celery, CHAT_REPEATS_QUEUE) == set(waiting)
