"""One Redis reader per web process: one `XREAD BLOCK` over every job stream requests wait on.

An open event stream or long-poll used to block a pooled Redis connection (and, under threads, a
thread) in an `XREAD` of its own. Here a request registers a waiter (stream key, last id) and
sleeps on an event; one reader thread blocks on all waiting streams at once and hands each waiter
the events after its id. When the set of streams changes while the reader is blocked, the
registering request appends to the hub's private wake stream, which the reader also reads, so
the read is re-issued at once with the new set.

Only `threading` primitives are used: under gunicorn's gevent worker they are monkey-patched into
greenlets and gevent events, so the same code serves threads (tests, the Flask test client) and
thousands of greenlets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

from common.jobs.events import JobEvent, stream_key

log = logging.getLogger(__name__)
# A Redis stream id as clients may send it back: `<ms>-<seq>`, or `0` for "from the start".
EVENT_ID = re.compile(r"^(?:0|\d{1,20}-\d{1,20})$")
BLOCK_MS = 5000
RETRY_SECONDS = 0.5
# At most one XREAD per interval: each names every watched stream, so under a crowd of waiters
# coming and going, re-issuing it on every change would cost more than the events themselves.
# Events and new waiters wait at most this long for the next read.
MIN_INTERVAL_SECONDS = 0.02
BATCH = 500
# Waiters woken between two yields of the reader when one read feeds many of them.
WAKE_BATCH = 50
_WAKE_RETENTION_SECONDS = 3600

StreamId = tuple[int, int]


def parse_event_id(event_id: str) -> StreamId:
    """A stream id (`<ms>-<seq>` or `0`) as a comparable pair."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)
class _Waiter:
    key: str
    after: StreamId
    ready: threading.Event = field(default_factory=threading.Event)
    events: list[JobEvent] = field(default_factory=list)
    error: BaseException | None = None


class StreamHub:
    """Waits for new events on many job streams with one Redis connection."""

    def __init__(
        self,
        reader: redis.Redis,
        waker: redis.Redis,
        block_ms: int = BLOCK_MS,
        retry_seconds: float = RETRY_SECONDS,
        min_interval: float = MIN_INTERVAL_SECONDS,
    ) -> None:
        self._reader = reader  # the hub's own connection, blocked in XREAD
        self._waker = waker  # the shared pool, for the short wake-up appends
        self._block_ms = block_ms
        self._retry_seconds = retry_seconds
        self._min_interval = min_interval
        self._wake_key = f"bookchat:hub:{uuid.uuid4().hex}:wake"
        self._wake_after = "0-0"
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiters: dict[str, set[_Waiter]] = {}
        self._reading = False  # the reader is in (or about to issue) an XREAD
        self._wake_pending = False  # a wake-up was sent since the reader last looked
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        waker: redis.Redis,
        block_ms: int = BLOCK_MS,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ) -> StreamHub:
        """A hub with a connection of its own to the Redis at `url`."""
        reader = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout,
            # A blocked XREAD answers within block_ms; silence beyond that is a dead link.
            socket_timeout=block_ms / 1000 + read_timeout,
            health_check_interval=30,
            max_connections=1,
        )
        return cls(reader, waker, block_ms)

    def read(
        self,
        job_id: uuid.UUID,
        after: str,
        timeout: float,
        ready: threading.Event | None = None,
    ) -> list[JobEvent]:
        """The job's events after `after`, waiting up to `timeout` seconds for the first.

        Setting `ready` (the caller's own event) ends the wait early, with no events.
        Raises what the reader's XREAD raised (a Redis outage) while this call waited.
        """
        waiter = _Waiter(stream_key(job_id), parse_event_id(after), ready or threading.Event())
        self._register(waiter)
        try:
            waiter.ready.wait(max(0.0, timeout))
        finally:
            with self._lock:
                self._discard(waiter)
        if waiter.error is not None:
            raise _fresh(waiter.error)
        return waiter.events

    def watched(self) -> int:
        """How many requests wait on the hub right now."""
        with self._lock:
            return sum(len(waiters) for waiters in self._waiters.values())

    def close(self) -> None:
        """Stop the reader (waiters get no more events) and release its connection."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            reading = self._reading
        with contextlib.suppress(redis.RedisError):
            if reading:
                self._wake()  # end the reader's XREAD now rather than after its block
            self._waker.delete(self._wake_key)
        if self._thread is not None:
            self._thread.join(timeout=1)
        self._reader.close()

    def _register(self, waiter: _Waiter) -> None:
        with self._lock:
            if self._closed:
                raise redis.ConnectionError("the event reader is closed")
            self._waiters.setdefault(waiter.key, set()).add(waiter)
            self._start_reader()
            if not self._reading:
                self._changed.notify()  # the reader idles on the condition: no Redis round trip
                return
            if self._wake_pending:
                return  # the reader will look again anyway
            self._wake_pending = True
        try:
            self._wake()
        except redis.RedisError:
            with self._lock:
                self._wake_pending = False
                self._discard(waiter)
            raise

    def _wake(self) -> None:
        pipe = self._waker.pipeline(transaction=False)
        pipe.xadd(self._wake_key, {"w": "1"}, maxlen=16, approximate=True)
        pipe.expire(self._wake_key, _WAKE_RETENTION_SECONDS)
        pipe.execute()

    def _discard(self, waiter: _Waiter) -> None:
        waiters = self._waiters.get(waiter.key)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[waiter.key]

    def _start_reader(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="stream-hub", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        issued = 0.0
        while True:
            time.sleep(max(0.0, issued + self._min_interval - time.monotonic()))
            streams = self._next_streams()
            if streams is None:
                return
            issued = time.monotonic()
            request: dict[Any, Any] = {**streams, self._wake_key: self._wake_after}
            try:
                response: Any = self._reader.xread(request, count=BATCH, block=self._block_ms)
                self._deliver(response or [])
            except Exception as exc:
                if not isinstance(exc, redis.RedisError):
                    log.exception("the event reader failed")
                self._fail_all(exc)
                time.sleep(self._retry_seconds)

    def _next_streams(self) -> dict[str, str] | None:
        """The streams to read next and from which id; None once the hub is closed."""
        with self._lock:
            while not self._waiters and not self._closed:
                self._reading = False
                self._changed.wait()
            if self._closed:
                self._reading = False
                return None
            self._reading = True
            self._wake_pending = False
            return {
                key: "{}-{}".format(*min(waiter.after for waiter in waiters))
                for key, waiters in self._waiters.items()
            }

    def _deliver(self, response: list[Any]) -> None:
        batches: list[tuple[str, list[tuple[StreamId, JobEvent]]]] = []
        for key, entries in response:
            if key == self._wake_key:
                self._wake_after = entries[-1][0]
                continue
            parsed = [
                (parse_event_id(event_id), _job_event(event_id, fields))
                for event_id, fields in entries
            ]
            batches.append((key, parsed))
        woken: list[_Waiter] = []
        with self._lock:
            self._reading = False  # until the next snapshot, a new waiter needs no wake-up
            for key, parsed in batches:
                for waiter in list(self._waiters.get(key, ())):
                    fresh = [event for event_id, event in parsed if event_id > waiter.after]
                    if fresh:
                        # Handed over under the lock: a waiter that stops waiting on its own
                        # (time-out, hang-up) before it is woken still returns these events.
                        waiter.events = fresh
                        self._discard(waiter)
                        woken.append(waiter)
        for n, waiter in enumerate(woken):
            if n and n % WAKE_BATCH == 0:
                # Under gevent each wake-up is a callback that runs the request's greenlet: a
                # fan-out to thousands queues them all ahead of any other request. Yielding
                # lets what was scheduled meanwhile (a /healthz) run between batches.
                time.sleep(0)
            waiter.ready.set()

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            failed = [waiter for waiters in self._waiters.values() for waiter in waiters]
            self._waiters.clear()
            self._reading = False
            for waiter in failed:
                waiter.error = exc
                waiter.ready.set()
        if failed:
            name = type(exc).__name__
            log.warning("event reader: %d waiters ended by %s: %s", len(failed), name, exc)


def _job_event(event_id: str, fields: dict[str, str]) -> JobEvent:
    return JobEvent(event_id, fields["event"], json.loads(fields["data"]))


def _fresh(exc: BaseException) -> BaseException:
    # Many requests re-raise the reader's error at once: each gets its own copy and traceback.
    try:
        return type(exc)(*exc.args)
    except TypeError:
        return redis.ConnectionError(str(exc))
