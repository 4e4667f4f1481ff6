"""A job's event log in a Redis Stream: the worker appends, readers resume by event id."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import redis

TERMINAL_EVENTS = frozenset({"done", "error"})
_MAX_EVENTS = 20_000
# KEYS: stream, cancel flag. ARGV: maxlen, ttl, check cancel (0/1), then event, data pairs.
_APPEND_UNLESS_CANCELLED = """
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
for i = 4, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[i], 'data', ARGV[i + 1])
end
if #ARGV > 3 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: stream, cancel flag. ARGV: ttl, data of the `status` event that opens the new stream.
# XTRIM to nothing keeps the stream's last id, so new ids still sort after every old one.
_RESTART = """
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('XTRIM', KEYS[1], 'MAXLEN', 0) end
local id = redis.call('XADD', KEYS[1], '*', 'event', 'status', 'data', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return id
"""


@dataclass(frozen=True)
class StreamEntry:
    """One event for a job's stream, appended by a script that also does other work."""

    key: str
    event: str
    data: str  # JSON
    max_events: int
    retention_seconds: int


@dataclass(frozen=True)
class JobEvent:
    id: str
    event: str
    data: dict[str, Any]

    def to_sse(self) -> str:
        """The event as a Server-Sent Events frame."""
        return f"id: {self.id}\nevent: {self.event}\ndata: {json.dumps(self.data)}\n\n"


def stream_key(job_id: uuid.UUID) -> str:
    """Redis key of the job's event stream."""
    return f"bookchat:job:{job_id}:events"


def cancel_key(job_id: uuid.UUID) -> str:
    """Redis key that tells a running worker to stop the job."""
    return f"bookchat:job:{job_id}:cancel"


class JobEvents:
    """Append to and read from per-job event streams."""

    def __init__(self, client: redis.Redis, retention_seconds: int = 86400) -> None:
        self.client = client
        self.retention_seconds = retention_seconds
        self._script: Any = None
        self._restart_script: Any = None

    def publish(self, job_id: uuid.UUID, event: str, data: dict[str, Any]) -> str:
        """Append one event and keep the stream alive for the retention period."""
        key = stream_key(job_id)
        pipe = self.client.pipeline()
        pipe.xadd(key, {"event": event, "data": json.dumps(data)}, maxlen=_MAX_EVENTS)
        pipe.expire(key, self.retention_seconds)
        event_id, _ = pipe.execute()
        return str(event_id)

    def entry(self, job_id: uuid.UUID, event: str, data: dict[str, Any]) -> StreamEntry:
        """The event as `publish` would append it, for a script of another module to append."""
        return StreamEntry(
            stream_key(job_id), event, json.dumps(data), _MAX_EVENTS, self.retention_seconds
        )

    def publish_many(
        self, job_id: uuid.UUID, events: list[tuple[str, dict[str, Any]]], check_cancel: bool
    ) -> bool:
        """Append events in order in one round trip; True (and nothing appended) if cancelled.

        With `check_cancel` the job's cancel flag is read in the same atomic script, so a
        cancelled job's stream gets nothing after the API's `done`.
        """
        args: list[Any] = [_MAX_EVENTS, self.retention_seconds, 1 if check_cancel else 0]
        for event, data in events:
            args += [event, json.dumps(data)]
        keys = [stream_key(job_id), cancel_key(job_id)]
        return bool(self._append_script(keys=keys, args=args))

    def restart(self, job_id: uuid.UUID, data: dict[str, Any]) -> str:
        """Start the job's stream afresh for a retry: earlier attempts' events and cancel go.

        The new stream opens with `status` `data`; its ids sort after the old ones, so a client
        resuming with an old Last-Event-ID reads the new stream from its start.
        """
        if self._restart_script is None:
            self._restart_script = self.client.register_script(_RESTART)
        keys = [stream_key(job_id), cancel_key(job_id)]
        return str(self._restart_script(keys=keys, args=[self.retention_seconds, json.dumps(data)]))

    @property
    def _append_script(self) -> Any:
        if self._script is None:
            self._script = self.client.register_script(_APPEND_UNLESS_CANCELLED)
        return self._script

    def read(
        self, job_id: uuid.UUID, after: str = "0-0", block_ms: int | None = None, count: int = 500
    ) -> list[JobEvent]:
        """Events after the given id, waiting up to `block_ms` for the first one."""
        response: Any = self.client.xread({stream_key(job_id): after}, count=count, block=block_ms)
        events: list[JobEvent] = []
        for _key, entries in response or []:
            for event_id, fields in entries:
                events.append(JobEvent(event_id, fields["event"], json.loads(fields["data"])))
        return events

    def last(self, job_id: uuid.UUID) -> JobEvent | None:
        """The newest event of the job's stream, if it has any."""
        response: Any = self.client.xrevrange(stream_key(job_id), count=1)
        for event_id, fields in response or []:
            return JobEvent(event_id, fields["event"], json.loads(fields["data"]))
        return None

    def exists(self, job_id: uuid.UUID) -> bool:
        """Whether the job's stream is still kept."""
        return bool(self.client.exists(stream_key(job_id)))

    def request_cancel(self, job_id: uuid.UUID) -> None:
        """Flag the job so its worker stops at the next delta."""
        self.client.set(cancel_key(job_id), "1", ex=self.retention_seconds)

    def cancel_requested(self, job_id: uuid.UUID) -> bool:
        """Whether someone asked to cancel the job."""
        return bool(self.client.exists(cancel_key(job_id)))
