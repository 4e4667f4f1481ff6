"""What each queue holds right now: the broker's depth, the job tables, and the live workers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.admin.operator_jobs import DEAD_LETTER_CODES
from common.jobs.lifecycle import model_of
from common.jobs.queue import CHAT_QUEUE, CHAT_REPEATS_QUEUE, INGEST_QUEUE, REPROCESS_QUEUE
from common.jobs.worker_heartbeats import live_workers
from common.platform.models import JobKind, JobStatus, utcnow

QUEUE_KINDS = {
    CHAT_QUEUE: JobKind.CHAT,
    INGEST_QUEUE: JobKind.INGEST,
    REPROCESS_QUEUE: JobKind.REPROCESS,
}
# Lists whose messages count in a queue's depth: the chat queue's include its fast lane.
QUEUE_LISTS = {CHAT_QUEUE: (CHAT_QUEUE, CHAT_REPEATS_QUEUE)}


def queue_depth(client: redis.Redis, name: str) -> int:
    """Messages waiting in a queue: the chat queue's include its fast lane's."""
    lengths: Any = [client.llen(key) for key in QUEUE_LISTS.get(name, (name,))]
    return sum(int(length) for length in lengths)


def _age(since: datetime | None, now: datetime) -> float | None:
    return round((now - since).total_seconds(), 1) if since else None


def _job_counts(session: Session, kind: JobKind, now: datetime) -> dict[str, Any]:
    model = model_of(kind)
    queued = model.status == JobStatus.QUEUED.value
    oldest_sent = session.scalar(select(func.min(model.enqueued_at)).where(queued))
    waiting_in_db = session.scalar(select(func.count()).where(queued, model.enqueued_at.is_(None)))
    running = session.execute(
        select(model.worker, func.count())
        .where(model.status == JobStatus.IN_PROGRESS.value)
        .group_by(model.worker)
    ).all()
    dead = session.scalar(
        select(func.count()).where(
            model.status == JobStatus.FAILED.value, model.error_code.in_(DEAD_LETTER_CODES)
        )
    )
    return {
        "oldest_waiting_s": _age(oldest_sent, now),
        "waiting_in_database": int(waiting_in_db or 0),
        "in_progress": sum(count for _worker, count in running),
        "dead_letters": int(dead or 0),
        "running_on": {worker or "?": count for worker, count in running},
    }


def queue_overview(session: Session, client: redis.Redis) -> dict[str, Any]:
    """Per queue: broker depth, oldest waiting age, in progress, dead letters, live workers."""
    now = utcnow()
    workers = live_workers(client)
    queues = []
    for name, kind in QUEUE_KINDS.items():
        counts = _job_counts(session, kind, now)
        running_on = counts.pop("running_on")
        consumers = [w for w in workers if name in w["queues"]]
        queues.append(
            {
                "name": name,
                "depth": queue_depth(client, name),
                **counts,
                "workers": [
                    {
                        "name": w["name"],
                        "last_seen_s": round(now.timestamp() - w["at"], 1),
                        "running": {
                            job_worker: n
                            for job_worker, n in running_on.items()
                            if job_worker.split(":")[0] == w["name"]
                        },
                    }
                    for w in consumers
                ],
            }
        )
    return {"object": "list", "data": queues}
