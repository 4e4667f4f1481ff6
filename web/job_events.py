"""Reading a job's event stream for long-polls and Server-Sent Events."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from common.jobs.events import TERMINAL_EVENTS, JobEvent, JobEvents
from common.jobs.job_endings import citations_data, done_data
from common.platform.errors import InvalidInput
from common.platform.models import JobStatus
from web.hangup import HangUpWatch
from web.problems import REDIS_ERRORS, REDIS_OUTAGE, RETRY_AFTER_SECONDS
from web.stream_hub import EVENT_ID, StreamHub, parse_event_id
from web.stream_slots import Slot

log = logging.getLogger(__name__)
PING_SECONDS = 15
MAX_STREAM_SECONDS = 600


class InvalidEventId(InvalidInput):
    code, title = "invalid_event_id", "Invalid event id"


@dataclass
class StreamReader:
    """The far end of a live stream: how often to ping it, its slot, and its hang-up."""

    ping_seconds: float = PING_SECONDS
    slot: Slot | None = None  # renewed at least once per ping while the stream is open
    hangup: HangUpWatch | None = None

    def wait(self, hub: StreamHub, job_id: uuid.UUID, after: str, block: float) -> list[JobEvent]:
        """The job's next events, or none after `block` seconds or once the reader hangs up."""
        ready = threading.Event()
        if self.hangup is not None:
            self.hangup.watch(ready)
        return hub.read(job_id, after, block, ready)

    def gone(self) -> bool:
        """Whether the reader is known to have hung up."""
        return self.hangup is not None and self.hangup.hung_up()

    def keep_alive(self) -> None:
        """Renew the slot if a ping interval has passed since it was last renewed."""
        if self.slot is not None and time.monotonic() - self.slot.renewed >= self.ping_seconds:
            self.slot.renew()


def resume_point(last_event_id: str | None, starting_after: str | None) -> str:
    """The id a stream resumes after: Last-Event-ID, else `?starting_after=`, else the start."""
    after = last_event_id or starting_after or "0-0"
    if not EVENT_ID.match(after):
        raise InvalidEventId("Last-Event-ID and starting_after take an event id such as 1712-0")
    return after


def wait_for_job(hub: StreamHub, job_id: uuid.UUID, timeout: float) -> None:
    """Block until the job's stream ends on a terminal event or the timeout passes.

    A terminal event followed by others (an operator retried the job) does not count.
    """
    deadline = time.monotonic() + timeout
    after = "0-0"
    while (remaining := deadline - time.monotonic()) > 0:
        batch = hub.read(job_id, after, remaining)
        if batch and batch[-1].event in TERMINAL_EVENTS:
            return
        if batch:
            after = batch[-1].id


def replay_from_snapshot(job: dict[str, Any]) -> list[JobEvent]:
    """Events rebuilt from a finished job's row, for when its stream has expired."""
    marker = {"cached": True, "cached_from": job["cached_from"]} if job.get("cached") else {}
    frames = [JobEvent("0-1", "status", {"status": job["status"], **marker})]
    if job.get("answer"):
        frames.append(JobEvent("0-2", "delta", {"text": job["answer"], **marker}))
    if job.get("citations") or job.get("sources"):
        cited = citations_data(job["citations"], job.get("sources"))
        frames.append(JobEvent("0-3", "citations", cited))
    if job["status"] == "failed":
        frames.append(JobEvent("0-4", "error", job.get("error") or {}))
    else:
        reason = (job.get("incomplete_details") or {}).get("reason")
        frames.append(JobEvent("0-4", "done", done_data(job["status"], reason, **marker)))
    return frames


def redis_outage_frame() -> str:
    """The frame ending a stream when Redis goes away: no id, so clients resume where they were."""
    data = {"code": REDIS_OUTAGE.code, "detail": REDIS_OUTAGE.detail, "retry": RETRY_AFTER_SECONDS}
    return f"retry: {RETRY_AFTER_SECONDS * 1000}\nevent: error\ndata: {json.dumps(data)}\n\n"


def job_event_stream(
    events: JobEvents,
    hub: StreamHub,
    job_id: uuid.UUID,
    after: str,
    snapshot: dict[str, Any],
    reload: Callable[[], dict[str, Any]],
    reader: StreamReader | None = None,
) -> Iterator[str]:
    """SSE frames from `after` up to the job's first terminal event, with keep-alive pings.

    Redis is asked once before the first byte is sent, so an outage then raises (a 503)
    instead of a 200 with a broken stream; a finished job replays from its row regardless.
    A reader at or beyond the end of a finished job gets its terminal event again.
    """
    finished = JobStatus(snapshot["status"]).is_terminal
    try:
        last = events.last(job_id)
    except REDIS_ERRORS:
        if not finished:
            raise
        last = None
    if finished and last is None:
        return _replayed_frames(snapshot, after)
    if finished and last is not None and _at_or_beyond(after, last):
        return _ending(last)
    return _live_frames(events, hub, job_id, after, snapshot, reload, reader or StreamReader())


def _replayed_frames(snapshot: dict[str, Any], after: str) -> Iterator[str]:
    """A finished job whose stream is gone (expired, or Redis away): its row, as events.

    From the start the frames carry ids; a reader resuming from any id gets `reset` and the
    whole answer without ids, which the client rule turns into the row's answer.
    """
    yield "retry: 2000\n\n"
    if after == "0-0":
        yield from (frame.to_sse() for frame in replay_from_snapshot(snapshot))
    else:
        yield from _row_frames(snapshot)


def _at_or_beyond(after: str, last: JobEvent) -> bool:
    """Whether a reader resuming after `after` already has the stream's terminal `last`."""
    return last.event in TERMINAL_EVENTS and parse_event_id(after) >= parse_event_id(last.id)


def _ending(last: JobEvent) -> Iterator[str]:
    yield "retry: 2000\n\n"
    yield last.to_sse()


def _live_frames(
    events: JobEvents,
    hub: StreamHub,
    job_id: uuid.UUID,
    after: str,
    snapshot: dict[str, Any],
    reload: Callable[[], dict[str, Any]],
    reader: StreamReader,
) -> Iterator[str]:
    yield "retry: 2000\n\n"
    finished = JobStatus(snapshot["status"]).is_terminal
    deadline = time.monotonic() + MAX_STREAM_SECONDS
    while time.monotonic() < deadline:
        # A finished job's terminal event may trail its row by a moment; wait briefly only.
        block = min(2.0, reader.ping_seconds) if finished else reader.ping_seconds
        try:
            batch = reader.wait(hub, job_id, after, block)
            if reader.gone():
                return  # nobody reads: free the slot now rather than at a failed write
            reader.keep_alive()
            if not batch and finished:
                yield from _catch_up(events, job_id, snapshot)
                return
        except REDIS_ERRORS as exc:
            # The headers are sent: end with whole frames and let the client reconnect.
            log.warning("event stream of job %s ended: Redis unavailable (%s)", job_id, exc)
            yield redis_outage_frame()
            return
        if not batch:
            snapshot = _reread(reload, snapshot)
            finished = JobStatus(snapshot["status"]).is_terminal
            yield ": ping\n\n"
            continue
        for event in batch:
            yield event.to_sse()
            after = event.id
            if event.event in TERMINAL_EVENTS:
                return  # the stream's end (a retry starts a fresh stream: see JobEvents.restart)
    yield f"event: timeout\ndata: {json.dumps({'detail': 'stream time limit reached'})}\n\n"


def _catch_up(events: JobEvents, job_id: uuid.UUID, snapshot: dict[str, Any]) -> Iterator[str]:
    """A finished job whose stream lacks its ending (lost in a Redis blip): replay the row.

    The frames carry no id, so a client that reconnects resumes from the last real event; the
    leading `reset` makes the client rule (drop partial text on reset) yield the row's answer.
    A stream that has its ending sends that ending again (the reader is at the end).
    """
    last = events.last(job_id)
    if last is not None and last.event in TERMINAL_EVENTS:
        yield last.to_sse()
        return
    yield from _row_frames(snapshot)


def _row_frames(snapshot: dict[str, Any]) -> Iterator[str]:
    yield _frame_without_id("reset", {"reason": "replaying the finished answer"})
    for frame in replay_from_snapshot(snapshot)[1:]:
        yield _frame_without_id(frame.event, frame.data)


def _frame_without_id(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _reread(reload: Callable[[], dict[str, Any]], snapshot: dict[str, Any]) -> dict[str, Any]:
    try:
        return reload()
    except SQLAlchemyError:
        return snapshot  # the database is away: keep streaming what Redis has
