"""Celery tasks: thin wrappers that take ids, call plain functions and record failures."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from common.ingest_runs import save_report
from common.llm.errors import RetryLater
from common.queue import CHAT_ANSWER_TASK, INGEST_TREE_TASK
from workers.chat import answer_chat_job, record_failure
from workers.ingest import IngestReport, ingest_tree
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
# Countdown tasks wait unacknowledged in worker memory; stay far below the visibility timeout.
MAX_COUNTDOWN_S = 300.0


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
        started = time.monotonic()

        def progress(status: str, report: IngestReport) -> None:
            if run_id:
                body = {
                    "status": status,
                    "path": path,
                    **asdict(report),
                    "seconds": round(time.monotonic() - started, 3),
                }
                save_report(res.redis, run_id, body)

        report = ingest_tree(
            res.index,
            Path(path),
            res.settings.textbook_base_url,
            on_file=lambda _source, r: progress("in_progress", r),
        )
        progress("completed", report)
        log.info("ingested %s: %s", path, report)
