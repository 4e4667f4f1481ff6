"""The fast lane's own threads: a few threads of a chat worker that take only `chat-repeats`.

In one pool a repeat waits for a free thread, and inside a backlog every thread holds a new
question: retrieval, up to LLM_MAX_WAIT_IN_PROCESS_SECONDS in the rate limiter, then the model's
whole answer (at 5 calls a second and 2-10 s an answer, more answers run than there are
threads). So a thread-pool chat worker leaves `chat-repeats` out of its pool's queues
(common/jobs/queue.py: `pool_queues`) and starts these threads instead: each holds a broker
connection of its own, takes one message at a time (prefetch 1) and runs its task itself, then
asks for the next. Busy chat jobs never hold a lane thread, and the lane does not wait for the
worker's event loop: a thread asks Redis again the moment its task ends.

Celery runs the task as it runs any (its Request and tracer, signals, late acknowledgement);
kombu keeps a delivered message until the task acknowledges it and puts it back after a worker
died, and the job's lease lets the watchdog take it back. A job the cache does not answer leaves
the lane at once (workers/chat.py), so the model never holds a lane thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps
from celery.concurrency.thread import TaskPool
from celery.worker.request import Request
from kombu import Consumer, Message

from common.jobs.queue import CHAT_QUEUE, CHAT_REPEATS_QUEUE

log = logging.getLogger(__name__)
# How long a lane thread blocks on Redis before it looks whether the worker is stopping.
POLL_S = 1.0


def fast_lane_step(threads: int) -> type[FastLane]:
    """The consumer step answering `chat-repeats` on `threads` threads of its own."""

    class SizedFastLane(FastLane):
        size = threads

    return SizedFastLane


class FastLane(bootsteps.StartStopStep):
    """Run the lane's threads while the worker consumes, when its pool leaves the lane out."""

    # The tasks' tracers are ready once Tasks started.
    requires = ("celery.worker.consumer:Tasks",)
    size = 2

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, c: Any) -> None:
        """Start the lane's threads (not for a pool that takes the lane itself)."""
        if not runs_lane(c) or self.threads:
            return
        self.stopping.clear()
        for n in range(self.size):
            thread = threading.Thread(
                target=self.consume, args=(c,), name=f"fast-lane-{n}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        log.info("fast lane: %d threads of their own for %s", self.size, CHAT_REPEATS_QUEUE)

    def stop(self, c: Any) -> None:
        """Let each thread end its running repeat (and acknowledge it), then stop."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(POLL_S + 30)
        self.threads = []

    def shutdown(self, c: Any) -> None:
        """As `stop`, at the consumer's shutdown."""
        self.stop(c)

    def consume(self, c: Any) -> None:
        """One lane thread: take a repeat, run it, ask for the next, until the worker stops."""
        queue = c.app.amqp.queues[CHAT_REPEATS_QUEUE]
        while not self.stopping.is_set():
            try:
                with c.app.connection_for_read() as connection, connection.channel() as channel:
                    handler = _Runner(c, connection)
                    consumer = Consumer(
                        channel,
                        queues=[queue],
                        on_message=handler.run,
                        accept=["json"],
                        prefetch_count=1,
                    )
                    with consumer:
                        self._drain(connection)
            except connection_errors(c) as exc:
                log.warning("fast lane: broker connection lost (%s); reconnecting", exc)
                self.stopping.wait(POLL_S)
            except Exception:
                # The pool leaves `chat-repeats` to these threads: one that ended would leave
                # repeats queued for good, so any other failure is logged and the thread goes on.
                log.exception("fast lane: unexpected error; starting over")
                self.stopping.wait(POLL_S)

    def _drain(self, connection: Any) -> None:
        while not self.stopping.is_set():
            try:
                connection.drain_events(timeout=POLL_S)
            except TimeoutError:
                continue


class _Runner:
    """Runs a lane message's task in the calling thread, as Celery's request does."""

    def __init__(self, c: Any, connection: Any) -> None:
        self.c = c
        self.errors = connection.connection_errors

    def run(self, message: Message) -> None:
        """Execute the message's task here; its request acknowledges it once it ran."""
        c, name = self.c, message.headers.get("task", "")
        task = c.app.tasks.get(name)
        if task is None:
            log.error("fast lane: unknown task %r; message dropped", name)
            message.reject_log_error(log, self.errors, requeue=False)
            return
        request = Request(
            message,
            on_ack=message.ack_log_error,
            on_reject=message.reject_log_error,
            app=c.app,
            hostname=c.hostname,
            task=task,
            connection_errors=self.errors,
            body=message.body,
            headers=message.headers,
            decoded=False,
            utc=c.app.uses_utc_timezone(),
        )
        request.execute()


def connection_errors(c: Any) -> tuple[type[BaseException], ...]:
    """The errors that mean the broker connection was lost."""
    return tuple(c.connection_errors) or (OSError,)


def runs_lane(c: Any) -> bool:
    """Whether this worker consumes `chat` on a thread pool that leaves `chat-repeats` out."""
    consumed = {queue.name for queue in c.app.amqp.queues.consume_from.values()}
    in_threads = isinstance(c.pool, TaskPool)
    return in_threads and CHAT_QUEUE in consumed and CHAT_REPEATS_QUEUE not in consumed
