"""Celery tasks: thin wrappers that take ids, call plain functions and record failures."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import SQLAlchemyError

from common.db import session_scope
from common.ingest_jobs import (
    fail_ingest_job,
    finish_ingest_job,
    record_progress,
    start_ingest_job,
)
from common.llm.errors import RetryLater
from common.queue import CHAT_ANSWER_TASK, INGEST_TREE_TASK, SEARCH_TASK
from common.retrieval.passages import search_result
from common.search_rpc import send_reply
from workers.chat import answer_chat_job, record_failure
from workers.ingest import IngestReport, ingest_tree
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
# Countdown tasks wait unacknowledged in worker memory; stay far below the visibility timeout.
MAX_COUNTDOWN_S = 300.0
# An ingest job's row is updated at most this often while files are processed.
PROGRESS_INTERVAL_S = 0.5


def register_tasks(app: Celery, res: WorkerResources) -> None:
    """Define bookchat's tasks on the app, bound to this process's resources."""

    @app.task(name=CHAT_ANSWER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def answer(self: Task, job_id: str) -> None:
        job = uuid.UUID(job_id)
        try:
            answer_chat_job(res, job)
        except RetryLater as wait:
            # The slot is freed: the job waits in the queue, not in this worker thread.
            raise self.retry(countdown=min(wait.delay, MAX_COUNTDOWN_S), max_retries=None) from wait
        except SoftTimeLimitExceeded:
            record_failure(res, job, "timeout", "answering took too long")
        except Exception:
            record_failure(res, job, "internal_error", "the answer could not be produced")
            raise

    @app.task(
        name=INGEST_TREE_TASK,
        acks_late=True,
        reject_on_worker_lost=True,
        soft_time_limit=1800,
        time_limit=1900,
    )
    def ingest(path: str, full: bool = False, run_id: str = "") -> None:
        job = uuid.UUID(run_id)
        with session_scope(res.sessions) as session:
            if not start_ingest_job(session, job):
                log.info("ingest job %s is not queued (a redelivery?); skipping", job)
                return
        root = Path(path)
        if not root.is_dir():
            with session_scope(res.sessions) as session:
                reason = "not a folder" if root.exists() else "folder not found"
                fail_ingest_job(session, job, f"{reason}: {path}")
            return
        last_write = 0.0

        def on_progress(report: IngestReport) -> None:
            # Throttled: a row update per file would make SQLite the bottleneck on big books.
            nonlocal last_write
            if time.monotonic() - last_write < PROGRESS_INTERVAL_S:
                return
            last_write = time.monotonic()
            try:
                with session_scope(res.sessions) as session:
                    record_progress(session, job, report)
            except SQLAlchemyError:
                log.warning("could not record progress of ingest job %s", job, exc_info=True)

        try:
            report = ingest_tree(
                res.index,
                res.embedder,
                root,
                res.settings.textbook_base_url,
                full=full,
                on_progress=on_progress,
            )
        except SoftTimeLimitExceeded:
            with session_scope(res.sessions) as session:
                fail_ingest_job(session, job, "the ingest took longer than its time limit")
            return
        except Exception as exc:
            with session_scope(res.sessions) as session:
                fail_ingest_job(session, job, f"ingest failed: {type(exc).__name__}: {exc}")
            raise
        with session_scope(res.sessions) as session:
            finish_ingest_job(session, job, report, report.collection or None)
        log.info("ingested %s (job %s): %s", path, job, report)

    @app.task(name=SEARCH_TASK, acks_late=False, ignore_result=True, soft_time_limit=20)
    def search(query: str, k: int, path_prefix: str | None, reply_to: str) -> None:
        try:
            passages = res.retriever.search.search(query, k, path_prefix)
        except Exception as exc:
            send_reply(res.redis, reply_to, {"error": type(exc).__name__})
            raise
        send_reply(res.redis, reply_to, {"results": [search_result(p) for p in passages]})
