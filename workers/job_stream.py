"""A running attempt's events: published in order, held back while Redis is away.

The job's row is the truth and the reader replays a finished job from it, so a Redis blip must
not fail the job: events that cannot be sent wait in memory and go out, in order, with the next
event; at the end of the attempt they get a bounded time to drain. After a failed send, deltas
wait a little before the next try (up to `MAX_BACKOFF_S`), so a hung Redis costs the answer one
socket time-out now and then, not one per delta; other events (rare) always try at once.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from redis import RedisError

from common.jobs.events import JobEvents

log = logging.getLogger(__name__)
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 5.0


class JobStream:
    """Publishes one attempt's events; deltas carry the attempt number and go out in batches.

    Deltas are joined and sent at most every `flush_interval_s` or once `flush_chars` are
    waiting: each flush is one Redis round trip (a script: EXISTS cancel flag, then XADD per
    event and EXPIRE unless cancelled) that also tells the caller whether the job was
    cancelled. Other events flush what
    is waiting, in order, at once. A batched delta carries the joined text, so the client rule
    (append deltas, drop text on reset) reads the same answer.
    """

    def __init__(
        self,
        events: JobEvents,
        job_id: uuid.UUID,
        attempt: int,
        flush_interval_s: float = 0.05,
        flush_chars: int = 400,
    ) -> None:
        self.events = events
        self.job_id = job_id
        self.attempt = attempt
        self.flush_interval_s = flush_interval_s
        self.flush_chars = flush_chars
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._text: list[str] = []
        self._text_chars = 0
        self._last_flush = -math.inf  # the first delta goes out at once
        self._warned = False
        self._backoff_s = 0.0  # after a failed send, wait this long before the next try
        self._retry_at = -math.inf

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send the event (after any waiting text) now, or as soon as Redis is back."""
        self._hold_text()
        self._pending.append((event, data))
        self.flush()

    def delta(self, text: str) -> bool:
        """A piece of the answer, tagged with this attempt; True once a cancel was seen.

        The cancel flag is read with each flush, so at least every `flush_interval_s` while
        text flows; unknown while Redis is away, so not cancelled.
        """
        self._text.append(text)
        self._text_chars += len(text)
        due = time.monotonic() - self._last_flush >= self.flush_interval_s
        if not due and self._text_chars < self.flush_chars:
            return False
        self._hold_text()
        return self._send(check_cancel=True)

    def flush(self) -> bool:
        """Send what is pending, in order; False if Redis is still away."""
        self._hold_text()
        self._send(check_cancel=False, now=True)
        return not self._pending

    def _hold_text(self) -> None:
        if self._text:
            self._pending.append(("delta", {"text": "".join(self._text), "attempt": self.attempt}))
            self._text, self._text_chars = [], 0

    def _send(self, check_cancel: bool, now: bool = False) -> bool:
        """One round trip for everything pending; the cancel flag when asked for.

        Unless `now`, nothing is tried while the back-off of a failed send runs.
        """
        self._last_flush = time.monotonic()
        if not self._pending and not check_cancel:
            return False
        if not now and self._last_flush < self._retry_at:
            return False  # Redis was away a moment ago: hold on, do not wait out its time-out
        try:
            cancelled = self.events.publish_many(self.job_id, self._pending, check_cancel)
        except RedisError as exc:
            if not self._warned:
                log.warning("events of job %s held back: %s", self.job_id, exc)
                self._warned = True
            self._backoff_s = min(max(FIRST_BACKOFF_S, 2 * self._backoff_s), MAX_BACKOFF_S)
            self._retry_at = time.monotonic() + self._backoff_s
            return False
        self._backoff_s, self._retry_at = 0.0, -math.inf
        if cancelled:
            # Nothing was appended: the text of a cancelled answer is dropped, other events
            # (held through an outage) still go out.
            self._pending = [(event, data) for event, data in self._pending if event != "delta"]
        else:
            self._pending = []
        return cancelled

    def drain(self, bound_seconds: float) -> None:
        """Keep trying to send what is pending for up to `bound_seconds`."""
        deadline = time.monotonic() + bound_seconds
        while not self.flush() and time.monotonic() < deadline:
            time.sleep(min(max(0.05, self._retry_at - time.monotonic()), 2.0))
        if self._pending:
            log.warning("dropped %d events of job %s; readers replay it from its row",
                        len(self._pending), self.job_id)  # fmt: skip

    def cancel_requested(self) -> bool:
        """Whether the reader asked to cancel; unknown while Redis is away, so no."""
        try:
            return self.events.cancel_requested(self.job_id)
        except RedisError:
            return False
