"""The worker's logs and metrics: JSON lines with the submit's request id, job latency histograms.

Celery signals do the wiring, so tasks stay as they are: `setup_logging` replaces Celery's own
log set-up with bookchat's, `task_prerun` binds the request id the web sent in the message
headers, and `task_postrun` records a job's latencies when this attempt finished it (the job
row says so: terminal, and completed after the attempt began).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Any, cast

from celery import Task, signals
from sqlalchemy.orm import Session, sessionmaker

from common.jobs.lifecycle import Job, model_of
from common.jobs.queue import CHAT_ANSWER_TASK, INGEST_TREE_TASK, REPROCESS_TASK, job_id_of
from common.platform.db import session_scope
from common.platform.logging_setup import REQUEST_ID_HEADER, bind_request_id, configure_logging
from common.platform.models import JobKind, JobStatus
from common.platform.observability import instruments, metrics_dir, observe_job, scrape_registry
from common.platform.settings import Settings
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
TASK_KINDS = {
    CHAT_ANSWER_TASK: JobKind.CHAT,
    INGEST_TREE_TASK: JobKind.INGEST,
    REPROCESS_TASK: JobKind.REPROCESS,
}


def connect_observability(settings: Settings, resources: WorkerResources) -> None:
    """Wire the worker's logging, request ids and job metrics to Celery's signals."""

    def setup_logging(loglevel: Any = None, **_kwargs: Any) -> None:
        # Connected, this signal also stops Celery from installing its own handlers.
        configure_logging(settings, loglevel or "INFO")

    started: dict[str, float] = {}

    def before_task(task_id: str, task: Task, **_kwargs: Any) -> None:
        bind_request_id(getattr(task.request, REQUEST_ID_HEADER, None))
        started[task_id] = time.time()

    def after_task(task_id: str, task: Task, **_kwargs: Any) -> None:
        try:
            kind = TASK_KINDS.get(task.name)
            began = started.pop(task_id, None)
            if kind is not None and began is not None:
                record_finished_job(resources.sessions, kind, job_id_of(task_id), began)
        except Exception:  # metrics must never fail a task
            log.warning("could not record the job's latency metrics", exc_info=True)
        finally:
            bind_request_id(None)

    signals.setup_logging.connect(setup_logging, weak=False)
    signals.task_prerun.connect(before_task, weak=False)
    signals.task_postrun.connect(after_task, weak=False)


def record_finished_job(
    sessions: sessionmaker[Session], kind: JobKind, job_id: str, attempt_began: float
) -> bool:
    """Observe the job's queue wait, run time and end to end if this attempt finished it."""
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        return False
    with session_scope(sessions) as session:
        job = cast(Job | None, session.get(model_of(kind), key))
        if job is None or not JobStatus(job.status).is_terminal or job.completed_at is None:
            return False
        if job.completed_at.timestamp() < attempt_began - 1:
            return False  # finished earlier (a redelivered task): counted by that attempt
        observe_job(
            kind.value,
            job.status,
            _seconds(job.created_at, job.started_at),
            _seconds(job.started_at, job.completed_at),
            job.completed_at.timestamp() - job.created_at.timestamp(),
        )
    return True


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return end.timestamp() - start.timestamp()


def serve_worker_metrics(port: int) -> None:
    """This worker host's metrics on http://0.0.0.0:port/metrics, for a scrape of its own."""
    from prometheus_client import start_http_server

    instruments()
    start_http_server(port, registry=scrape_registry())
    log.info("serving metrics on port %d from %s", port, metrics_dir() or "this process")
