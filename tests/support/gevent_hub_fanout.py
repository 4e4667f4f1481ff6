"""Run as a script: the stream hub under gevent's patching, fanning events out to many waiters.

`python -m tests.support.gevent_hub_fanout REDIS_URL` patches the standard library as
gunicorn's gevent worker does and prints what happened as JSON:

- `probe_before`: how many of the waiters on one stream had been woken when a greenlet,
  spawned by the first waiter woken, got to run (a hub that wakes them all in one go lets it
  run only after every one of them);
- `waiters`: how many waiters shared that stream;
- `streams`: per stream, whether every one of its readers received every event in order.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from common.jobs.events import JobEvents  # noqa: E402
from web.stream_hub import StreamHub  # noqa: E402

FAN_OUT = 500  # waiters on one stream: ten times the hub's batch of wake-ups
STREAMS, READERS, EVENTS = 40, 10, 12  # for the ordering check
PATIENCE = 60.0


def _wait_for_waiters(hub: StreamHub, count: int) -> None:
    while hub.watched() < count:
        gevent.sleep(0.01)


def fan_out(hub: StreamHub, events: JobEvents) -> int:
    """How many of FAN_OUT waiters were woken when a greenlet spawned by the first one ran."""
    job_id = uuid.uuid4()
    woken: list[int] = []
    seen_by_probe: list[int] = []

    def wait(n: int) -> None:
        hub.read(job_id, "0-0", PATIENCE)
        if not woken:
            gevent.spawn(lambda: seen_by_probe.append(len(woken)))
        woken.append(n)

    greenlets = [gevent.spawn(wait, n) for n in range(FAN_OUT)]
    _wait_for_waiters(hub, FAN_OUT)
    events.publish(job_id, "status", {"status": "queued"})
    gevent.joinall(greenlets, timeout=PATIENCE)
    gevent.sleep(0)
    if len(woken) != FAN_OUT or not seen_by_probe:
        raise RuntimeError(f"woken {len(woken)} of {FAN_OUT}; probe ran: {bool(seen_by_probe)}")
    return seen_by_probe[0]


def in_order(hub: StreamHub, events: JobEvents) -> list[bool]:
    """Per stream: whether each of its READERS got all EVENTS, in the order they were sent."""
    job_ids = [uuid.uuid4() for _ in range(STREAMS)]
    received: dict[uuid.UUID, list[list[str]]] = {job_id: [] for job_id in job_ids}

    def follow(job_id: uuid.UUID) -> None:
        found: list[str] = []
        received[job_id].append(found)
        after = "0-0"
        while len(found) < EVENTS:
            batch = hub.read(job_id, after, PATIENCE)
            if not batch:
                return
            found.extend(event.id for event in batch)
            after = batch[-1].id

    greenlets = [gevent.spawn(follow, job_id) for job_id in job_ids for _ in range(READERS)]
    _wait_for_waiters(hub, STREAMS * READERS)
    sent: dict[uuid.UUID, list[str]] = {job_id: [] for job_id in job_ids}
    for n in range(EVENTS):
        for job_id in job_ids:
            sent[job_id].append(events.publish(job_id, "delta", {"n": n}))
        gevent.sleep(0.001 * (n % 3))  # some rounds land in one read, some across reads
    gevent.joinall(greenlets, timeout=PATIENCE)
    return [all(found == sent[job_id] for found in received[job_id]) for job_id in job_ids]


def main(url: str) -> dict[str, Any]:
    """Both checks on one hub over the Redis at `url`."""
    waker = redis.Redis.from_url(url, decode_responses=True)
    hub = StreamHub.from_url(url, waker)
    try:
        events = JobEvents(waker)
        probe_before = fan_out(hub, events)
        streams = in_order(hub, events)
    finally:
        hub.close()
        waker.close()
    return {"probe_before": probe_before, "waiters": FAN_OUT, "streams": streams}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
