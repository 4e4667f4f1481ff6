"""Celery tasks: thin wrappers that take ids and call plain functions.

The functions record every outcome on the job's row, including waits: a job that must wait goes
back to `queued` with a due time and the watchdog sends it again, so no task retries itself.
"""

from __future__ import annotations

import logging
import uuid

from celery import Celery, Task

from common.book.retrieval.passages import search_result
from common.jobs.queue import (
    CHAT_ANSWER_TASK,
    CHAT_REPEATS_QUEUE,
    INGEST_TREE_TASK,
    REPROCESS_TASK,
    SEARCH_TASK,
)
from common.jobs.search_rpc import send_reply
from workers.chat import answer_chat_job
from workers.ingest_job import run_ingest_job
from workers.reprocess import run_reprocess_job
from workers.resources import WorkerResources

log = logging.getLogger(__name__)


def register_tasks(app: Celery, res: WorkerResources) -> None:
    """Define bookchat's tasks on the app, bound to this process's resources."""

    @app.task(name=CHAT_ANSWER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def answer(self: Task, job_id: str) -> None:
        delivery = self.request.delivery_info or {}
        fast_lane = delivery.get("routing_key") == CHAT_REPEATS_QUEUE
        answer_chat_job(res, uuid.UUID(job_id), fast_lane=fast_lane)

    @app.task(
        name=INGEST_TREE_TASK,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=1800,
        time_limit=1900,
    )
    def ingest(path: str, full: bool = False, run_id: str = "") -> None:
        run_ingest_job(res, uuid.UUID(run_id), path, full)

    @app.task(name=REPROCESS_TASK, acks_late=True, reject_on_worker_lost=True)
    def reprocess(job_id: str) -> None:
        run_reprocess_job(res, uuid.UUID(job_id))

    @app.task(name=SEARCH_TASK, acks_late=False, ignore_result=True, soft_time_limit=20)
    def search(
        query: str, k: int, path_prefix: str | None, reply_to: str, book: str | None = None
    ) -> None:
        try:
            passages = res.retriever.search.search(query, k, path_prefix, book=book)
        except Exception as exc:
            send_reply(res.redis, reply_to, {"error": type(exc).__name__})
            raise
        send_reply(res.redis, reply_to, {"results": [search_result(p) for p in passages]})
