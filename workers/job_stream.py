"""A running attempt's events: published in order, held back while Redis is away.

The job's row is the truth and the reader replays a finished job from it, so a Redis blip must
not fail the job: events that cannot be sent wait in memory and go out, in order, with the next
event; at the end of the attempt they get a bounded time to drain.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from redis import RedisError

from common.events import JobEvents

log = logging.getLogger(__name__)


class JobStream:
    """Publishes one attempt's events; deltas carry the attempt number."""

    def __init__(self, events: JobEvents, job_id: uuid.UUID, attempt: int) -> None:
        self.events = events
        self.job_id = job_id
        self.attempt = attempt
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._warned = False

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send the event now, or as soon as Redis is back."""
        self._pending.append((event, data))
        self.flush()

    def delta(self, text: str) -> None:
        """A piece of the answer, tagged with this attempt."""
        self.publish("delta", {"text": text, "attempt": self.attempt})

    def flush(self) -> bool:
        """Send what is pending, in order; False if Redis is still away."""
        try:
            while self._pending:
                self.events.publish(self.job_id, *self._pending[0])
                self._pending.pop(0)
        except RedisError as exc:
            if not self._warned:
                log.warning("events of job %s held back: %s", self.job_id, exc)
                self._warned = True
            return False
        return True

    def drain(self, bound_seconds: float) -> None:
        """Keep trying to send what is pending for up to `bound_seconds`."""
        deadline = time.monotonic() + bound_seconds
        delay = 0.2
        while not self.flush() and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        if self._pending:
            log.warning("dropped %d events of job %s; readers replay it from its row",
                        len(self._pending), self.job_id)  # fmt: skip

    def cancel_requested(self) -> bool:
        """Whether the reader asked to cancel; unknown while Redis is away, so no."""
        try:
            return self.events.cancel_requested(self.job_id)
        except RedisError:
            return False
