"""Reading a job's event stream for long-polls and Server-Sent Events."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from common.events import TERMINAL_EVENTS, JobEvent, JobEvents
from common.models import JobStatus

PING_SECONDS = 15
MAX_STREAM_SECONDS = 600


def wait_for_job(events: JobEvents, job_id: uuid.UUID, timeout: float) -> None:
    """Block until the job's stream carries a terminal event or the timeout passes."""
    deadline = time.monotonic() + timeout
    after = "0-0"
    while (remaining := deadline - time.monotonic()) > 0:
        batch = events.read(job_id, after, block_ms=max(1, int(remaining * 1000)))
        if any(event.event in TERMINAL_EVENTS for event in batch):
            return
        if batch:
            after = batch[-1].id


def replay_from_snapshot(job: dict[str, Any]) -> list[JobEvent]:
    """Events rebuilt from a finished job's row, for when its stream has expired."""
    frames = [JobEvent("0-1", "status", {"status": job["status"]})]
    if job.get("answer"):
        frames.append(JobEvent("0-2", "delta", {"text": job["answer"]}))
    if job.get("citations"):
        frames.append(JobEvent("0-3", "citations", {"citations": job["citations"]}))
    if job["status"] == "failed":
        frames.append(JobEvent("0-4", "error", job.get("error") or {}))
    else:
        frames.append(JobEvent("0-4", "done", {"status": job["status"]}))
    return frames


def job_event_stream(
    events: JobEvents, job_id: uuid.UUID, after: str, snapshot: dict[str, Any]
) -> Iterator[str]:
    """SSE frames from `after` until the job's terminal event, with keep-alive pings."""
    yield "retry: 2000\n\n"
    finished = JobStatus(snapshot["status"]).is_terminal
    if finished and not events.exists(job_id):
        if after == "0-0":
            yield from (frame.to_sse() for frame in replay_from_snapshot(snapshot))
        return
    deadline = time.monotonic() + MAX_STREAM_SECONDS
    while time.monotonic() < deadline:
        # A finished job's terminal event may trail its row by a moment; wait briefly only.
        block = 2000 if finished else PING_SECONDS * 1000
        batch = events.read(job_id, after, block_ms=block)
        if not batch:
            if finished:
                return
            yield ": ping\n\n"
            continue
        for event in batch:
            yield event.to_sse()
            after = event.id
            if event.event in TERMINAL_EVENTS:
                return
    yield f"event: timeout\ndata: {json.dumps({'detail': 'stream time limit reached'})}\n\n"
