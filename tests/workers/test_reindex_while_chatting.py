"""A full reindex through the admin API while chat jobs run on the same worker (2 threads).

The `ingest_stack` worker consumes both the `chat` and `ingest` queues with two threads, so one
thread rebuilds the index while the other answers: chat must keep reading the old collection
until the alias moves, then read the new one.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from common.jobs.ingest_jobs import wait_for_ingest_job
from tests.support.stack import SAMPLE_TEXTBOOK, Stack

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not

INGEST = "/v1/admin/ingest"
NODES = "01-ros2/nodes-and-topics.md"
QUESTION = "What is a ROS 2 node?"
COPIES = 2  # extra copies of the sample book, so the rebuild far outlasts the chats
CHATS = 4


@pytest.fixture
def big_book(tmp_path: Path) -> Path:
    """The sample book at the top level plus copies in sub-folders (3x the files and chunks)."""
    book = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "book"))
    for n in range(1, COPIES + 1):
        shutil.copytree(SAMPLE_TEXTBOOK, book / f"shelf-{n}")
    return book


@pytest.fixture
def sample_index(ingest_stack: Stack) -> Iterator[str]:
    """The stack's index holds just the sample book, before and after; yields its collection."""
    job = ingest_stack.ingest(SAMPLE_TEXTBOOK)
    assert job["status"] == "completed" and job["collection"], job
    yield job["collection"]
    restored = ingest_stack.ingest(SAMPLE_TEXTBOOK)
    assert restored["status"] == "completed", restored


def read_ingest(stack: Stack, admin: dict[str, str], location: str) -> dict[str, Any]:
    """The ingest job behind a Location header."""
    response = stack.client.get(location, headers=admin)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def wait_until_building(
    stack: Stack, admin: dict[str, str], location: str, timeout: float = 30
) -> dict[str, Any]:
    """Poll until the ingest job has written at least one file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = read_ingest(stack, admin, location)
        assert job["status"] in ("queued", "in_progress"), job
        if job["status"] == "in_progress" and job["files_seen"] >= 1:
            return job
        time.sleep(0.05)
    raise AssertionError(f"the ingest did not start; worker log: {stack.worker_log()}")


def first_citation(job: dict[str, Any]) -> dict[str, Any]:
    """The first citation of a completed chat job."""
    assert job["status"] == "completed", job
    assert job["citations"], job
    return dict(job["citations"][0])


def at(timestamp: str) -> datetime:
    """An ISO timestamp from a job body."""
    return datetime.fromisoformat(timestamp)


def test_the_worker_has_a_thread_for_each_queue(ingest_stack: Stack) -> None:
    """The premise of the test below: one worker, consuming chat and ingest, two threads."""
    inspect = ingest_stack.resources.celery.control.inspect(timeout=5, limit=1)
    [stats] = (inspect.stats() or {}).values()
    [queues] = (inspect.active_queues() or {}).values()

    assert stats["pool"]["max-concurrency"] >= 2, stats
    assert {"chat", "ingest"} <= {queue["name"] for queue in queues}


def test_chat_keeps_answering_during_a_full_reindex(
    ingest_stack: Stack, sample_index: str, big_book: Path
) -> None:
    stack, old_collection = ingest_stack, sample_index
    admin, reader = stack.admin(), stack.signup()

    response = stack.client.post(INGEST, json={"path": str(big_book), "full": True}, headers=admin)
    assert response.status_code == 202, response.get_json()
    location = response.headers["Location"]
    reindex_id = uuid.UUID(response.get_json()["id"])
    try:
        building = wait_until_building(stack, admin, location)
        chats = [stack.submit(reader, message=QUESTION)["id"] for _ in range(CHATS)]
        answered = [stack.wait(reader, job_id) for job_id in chats]
        during = read_ingest(stack, admin, location)
    finally:
        finished = wait_for_ingest_job(stack.resources.sessions, reindex_id, timeout=120)
    assert finished is not None, stack.worker_log()
    reindex = read_ingest(stack, admin, location)

    # Every chat ran inside the rebuild and answered from the old collection.
    assert during["status"] == "in_progress", (during, answered)
    for job in answered:
        citation = first_citation(job)
        assert citation["source"] == NODES, job
        assert citation["heading"] == "What is a node?"
        assert at(building["started_at"]) < at(job["started_at"])
        assert at(job["completed_at"]) < at(reindex["completed_at"])

    # The rebuild wrote a new collection and the alias moved to it.
    assert reindex["status"] == "completed", reindex
    assert reindex["collection"] and reindex["collection"] != old_collection
    files = 4 * (COPIES + 1)
    assert (reindex["files_total"], reindex["files_changed"], reindex["files_failed"]) == (
        files,
        files,
        0,
    )
    assert reindex["chunks_written"] == reindex["embeddings_computed"] > 0

    # A chat after the swap reads the new collection (which also holds the copies).
    after = stack.wait(reader, stack.submit(reader, message=QUESTION)["id"])
    citation = first_citation(after)
    assert citation["source"].endswith(NODES), after
    assert citation["heading"] == "What is a node?"
    assert at(after["started_at"]) > at(reindex["completed_at"])
