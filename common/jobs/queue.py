"""The Celery application shared by web (to send) and workers (to run): queues and reliability."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import secrets
import threading
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery
from kombu import Exchange, Queue
from kombu.utils import json as kombu_json

from common.jobs.events import StreamEntry
from common.jobs.repeat_lane import INDEX_VERSION_KEY
from common.platform.logging_setup import REQUEST_ID_HEADER, current_request_id
from common.platform.redis_client import redis_url, same_database
from common.platform.retry_policy import retry_policy
from common.platform.settings import Settings

log = logging.getLogger(__name__)

CHAT_QUEUE = "chat"
# Repeats whose answer is stored (common/jobs/repeat_lane.py): every chat worker consumes it too.
CHAT_REPEATS_QUEUE = "chat-repeats"
CHAT_QUEUES = (CHAT_QUEUE, CHAT_REPEATS_QUEUE)
INGEST_QUEUE = "ingest"
REPROCESS_QUEUE = "reprocess"
ALL_QUEUES = (CHAT_QUEUE, CHAT_REPEATS_QUEUE, INGEST_QUEUE, REPROCESS_QUEUE)

CHAT_ANSWER_TASK = "chat.answer"
INGEST_TREE_TASK = "ingest.tree"
SEARCH_TASK = "search.query"
REPROCESS_TASK = "reprocess.run"


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured for at-least-once delivery of idempotent, id-only tasks."""
    broker = redis_url(settings)
    policy = retry_policy(settings)
    app = Celery("bookchat", broker=broker, set_as_current=False)
    app.conf.update(
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in ALL_QUEUES],
        task_default_queue=CHAT_QUEUE,
        task_routes={
            "chat.*": {"queue": CHAT_QUEUE},
            "search.*": {"queue": CHAT_QUEUE},
            "ingest.*": {"queue": INGEST_QUEUE},
            "reprocess.*": {"queue": REPROCESS_QUEUE},
        },
        task_serializer="json",
        accept_content=["json"],
        # State lives in database rows; Celery results would only grow Redis.
        task_ignore_result=True,
        result_backend=None,
        # A task is acknowledged after it ran, and redelivered if its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.chat_job_time_limit_seconds + 30,
        task_soft_time_limit=settings.chat_job_time_limit_seconds,
        broker_transport_options={
            # Above the longest task, or a task still running is delivered again.
            "visibility_timeout": policy.visibility_timeout_s,
            # A hung broker fails a send (a 503 for the submit) instead of holding it.
            "socket_connect_timeout": settings.redis_connect_timeout_seconds,
            "socket_timeout": settings.redis_socket_timeout_seconds,
        },
        broker_connection_retry_on_startup=True,
        # A submit must fail fast (503) rather than hang when the broker is down.
        task_publish_retry_policy=policy.publish_retry_policy(),
        worker_hijack_root_logger=False,
        # Task events for Flower: workers report received/started/succeeded, senders "sent".
        worker_send_task_events=True,
        task_send_sent_event=True,
        enable_utc=True,
    )
    return app


def with_fast_lane(queues: Sequence[str]) -> list[str]:
    """The queues a worker consumes: whoever consumes `chat` consumes `chat-repeats` too."""
    names = list(queues)
    if CHAT_QUEUE in names and CHAT_REPEATS_QUEUE not in names:
        names.insert(names.index(CHAT_QUEUE) + 1, CHAT_REPEATS_QUEUE)
    return names


def pool_queues(queues: Sequence[str], pool: str, lane_threads: int) -> list[str]:
    """The queues a worker's pool takes tasks from; `chat-repeats` left to its lane, if any.

    A thread-pool worker of `chat` with lane threads consumes `chat-repeats` on a consumer of
    its own (workers/fast_lane.py), so repeats never wait for a pool thread held by a backlog
    job. A prefork worker's pool takes both: its parent process runs no task.
    """
    names = with_fast_lane(queues)
    if fast_lane_apart(names, pool, lane_threads):
        names.remove(CHAT_REPEATS_QUEUE)
    return names


def fast_lane_apart(queues: Sequence[str], pool: str, lane_threads: int) -> bool:
    """Whether a worker of these queues and pool answers repeats on threads of their own."""
    return pool == "threads" and lane_threads > 0 and CHAT_QUEUE in queues


def task_id(job_id: uuid.UUID | str) -> str:
    """A fresh task id that names its job, so the broker's contents can be matched to rows."""
    return f"{job_id}.{secrets.token_hex(4)}"


def job_id_of(task: str) -> str:
    """The job id inside a task id made by `task_id`."""
    return task.split(".", 1)[0]


class ChatTaskPublisher:
    """Pushes `chat.answer` messages straight onto the broker's list for the chat queue.

    `send_task` rebuilds the whole message, goes through kombu's producer and publishes a
    `task-sent` event on every call (0.5-1.0 ms of CPU against 0.1 ms for this path). The
    message is Celery's own (protocol 2, built once by `app.amqp.as_task_v2` with the app's
    settings); per job only the ids, the argument and the delivery tag change, then one LPUSH
    sends it, as kombu's Redis transport does for a queue without priorities.
    tests/common/jobs/test_queue_messages.py sends the same task through `send_task` on a real Redis
    and compares the two messages field by field, so a Celery or kombu upgrade that changes the
    format fails there.

    A first-turn question comes with its repeat hint's key (common/jobs/repeat_lane.py): then one
    Lua script pushes it to `chat-repeats` if the hint names the current index version, else to
    `chat`, in the same single round trip. The message names its queue (the routing key kombu
    uses to put an unacknowledged message back after a worker died), so the script receives it
    in two halves around that name. The same script appends the job's `queued` event when its
    stream is on the broker's Redis (`shares_database`), so a submit sends in one round trip.
    """

    def __init__(self, celery: Celery) -> None:
        conf = celery.conf
        # As send_task calls it (ignore_result unset: the worker applies the app's setting).
        template = celery.amqp.as_task_v2("", CHAT_ANSWER_TASK, args=[""], ignore_result=None)
        self._headers: dict[str, Any] = dict(template.headers)
        self._properties: dict[str, Any] = {
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": CHAT_QUEUE},
            "priority": 0,
            "body_encoding": "base64",
        }
        options = conf.broker_transport_options or {}
        self._client = redis.Redis.from_url(
            conf.broker_url,
            socket_connect_timeout=options.get("socket_connect_timeout", 5),
            socket_timeout=options.get("socket_timeout", 5),
        )
        # EVALSHA: one round trip (redis-py loads the script once if the server lacks it).
        self._send = self._client.register_script(_SEND)

    def message(self, job_id: uuid.UUID | str, queue: str = CHAT_QUEUE) -> bytes:
        """The serialized broker message that runs `chat.answer(job_id)` from `queue`."""
        tid, arg = task_id(job_id), str(job_id)
        headers = {**self._headers, "id": tid, "root_id": tid, "argsrepr": repr([arg])}
        headers.update(request_headers())
        body = json.dumps([[arg], {}, _EMBED]).encode()
        properties = {
            **self._properties,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "correlation_id": tid,
            "reply_to": str(uuid.uuid4()),
            "delivery_tag": str(uuid.uuid4()),
        }
        message = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
        return json.dumps(message).encode()

    def shares_database(self, client: redis.Redis) -> bool:
        """Whether `client` reaches the broker's Redis database (then events can ride along)."""
        return same_database(self._client, client)

    def send(
        self,
        job_id: uuid.UUID | str,
        hint_key: str | None = None,
        event: StreamEntry | None = None,
    ) -> str:
        """Push the job's message; the queue it went to (raises redis' errors when unreachable).

        With a hint's key, to `chat-repeats` when the hint names the current index version.
        With an `event` (its stream on this Redis), the script appends it after the push; an
        append the server refuses is logged, and the job stays sent.
        """
        if hint_key is None and event is None:
            self._client.lpush(CHAT_QUEUE, self.message(job_id))
            return CHAT_QUEUE
        head, _, tail = self.message(job_id, _QUEUE_SLOT).partition(_QUEUE_SLOT.encode())
        keys = [CHAT_QUEUE, CHAT_REPEATS_QUEUE]
        args: list[bytes | str] = [head, tail, "1" if hint_key else "0"]
        if hint_key is not None:
            keys += [hint_key, INDEX_VERSION_KEY]
        if event is not None:
            keys.append(event.key)
            args += [event.event, event.data, str(event.max_events), str(event.retention_seconds)]
        reply: Any = self._send(keys=keys, args=args, client=self._client)
        queue, appended = reply
        if event is not None and not appended:
            log.warning("could not append the %s event of job %s", event.event, job_id)
        return queue.decode() if isinstance(queue, bytes) else str(queue)


# KEYS: the chat queue, the fast lane, [the hint, the index version], [the job's event stream].
# ARGV: the message's halves around its queue's name, whether a hint routes it (1/0), [the
# event, its data, the stream's max length, its time to live]. The push comes first: an event
# the server refuses (redis.pcall) leaves the job sent, as a separate XADD failing would.
_SEND = """
local queue = KEYS[1]
if ARGV[3] == '1' and redis.call('GET', KEYS[3]) == (redis.call('GET', KEYS[4]) or '0') then
  queue = KEYS[2]
end
redis.call('LPUSH', queue, ARGV[1] .. queue .. ARGV[2])
if #ARGV == 3 then return {queue, 0} end
local stream = KEYS[#KEYS]
local added = redis.pcall(
  'XADD', stream, 'MAXLEN', '~', ARGV[6], '*', 'event', ARGV[4], 'data', ARGV[5])
if type(added) == 'table' and added.err then return {queue, 0} end
redis.call('EXPIRE', stream, ARGV[7])
return {queue, 1}
"""
# Stands for the queue's name in a message built for the script (never a queue's own name).
_QUEUE_SLOT = "@@bookchat-queue@@"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_publishers: weakref.WeakKeyDictionary[Celery, ChatTaskPublisher] = weakref.WeakKeyDictionary()
_publishers_lock = threading.Lock()


def chat_publisher(celery: Celery) -> ChatTaskPublisher:
    """The app's chat-task publisher, built on first use and kept with the app."""
    publisher = _publishers.get(celery)
    if publisher is None:
        with _publishers_lock:
            publisher = _publishers.get(celery) or ChatTaskPublisher(celery)
            _publishers[celery] = publisher
    return publisher


def request_headers() -> dict[str, str]:
    """Message headers carrying the current request id, so the worker's logs can name it."""
    current = current_request_id()
    return {REQUEST_ID_HEADER: current} if current else {}


def enqueue_chat_job(
    celery: Celery,
    job_id: uuid.UUID,
    hint_key: str | None = None,
    event: StreamEntry | None = None,
) -> str:
    """Send the chat job's id to a chat queue (only after the row is committed); which one.

    `hint_key`: the repeat hint of a first-turn question (common/jobs/repeat_lane.py), which
    sends it to the fast lane when its answer is stored. `event`: appended in the same round
    trip (its stream must be on the broker's Redis: `ChatTaskPublisher.shares_database`).
    """
    publisher = chat_publisher(celery)
    try:
        return publisher.send(job_id, hint_key, event)
    except (redis.ConnectionError, redis.TimeoutError):
        # One more try on a fresh connection (a pooled one may have gone stale), as Celery's
        # publish retry would; then the caller compensates.
        return publisher.send(job_id, hint_key, event)


def enqueue_ingest(celery: Celery, path: str, *, full: bool = False, run_id: str = "") -> None:
    """Send a textbook folder to the ingest queue."""
    celery.send_task(
        INGEST_TREE_TASK,
        args=[path],
        kwargs={"full": full, "run_id": run_id},
        queue=INGEST_QUEUE,
        task_id=task_id(run_id),
        headers=request_headers(),
    )


def enqueue_reprocess(celery: Celery, job_id: uuid.UUID) -> None:
    """Send a reprocess job's id to the reprocess queue."""
    celery.send_task(
        REPROCESS_TASK,
        args=[str(job_id)],
        queue=REPROCESS_QUEUE,
        task_id=task_id(job_id),
        headers=request_headers(),
    )


def waiting_job_ids(celery: Celery, *queues: str) -> set[str]:
    """Ids of the jobs whose tasks wait in `queues` (sent, not yet delivered), left in place.

    Read through kombu, which owns the broker's layout and envelopes: its Redis transport keeps
    a queue as one list per priority step, and it decodes each message; Celery names the task
    in the standard `correlation_id` property. Nothing here parses Celery's own headers.
    """
    ids: set[str] = set()
    with celery.connection_or_acquire() as connection, connection.channel() as channel:
        with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            for queue in queues:
                for priority in channel.priority_steps:
                    pipe.lrange(channel._q_for_pri(queue, priority), 0, -1)
            lists = pipe.execute()
        for raw in itertools.chain.from_iterable(lists):
            try:
                message = channel.Message(kombu_json.loads(raw), channel=channel)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # not a kombu message
            task = message.properties.get("correlation_id")
            if isinstance(task, str):
                ids.add(job_id_of(task))
    return ids
