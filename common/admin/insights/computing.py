"""Running an insights run in the worker: embed what is new, place it, build the report.

A run after a run costs what is new since; progress is written as it goes, and a run whose
lease was taken over stops (see `runs` for how runs are started and read).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from common.admin.insights.gaps import Closest, Explain
from common.admin.insights.pages import Page
from common.admin.insights.report import compute_report
from common.admin.insights.runs import INSIGHTS, WAIT_FOR_OTHER_S
from common.admin.insights.vectors import embed_questions, missing_vectors, place_vectors
from common.book.retrieval.embeddings import Embedder
from common.jobs.lifecycle import fenced_update, finish_attempt, release_attempt
from common.platform.models import (
    AttemptOutcome,
    InsightsRun,
    JobKind,
    JobStatus,
    ReprocessJob,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTools:
    """What a worker lends a run: the embedder, the index's pages, search and a model."""

    embedder: Embedder
    catalogue: Callable[[], list[Page]]
    closest: Closest | None = None
    explain: Explain | None = None
    # Called once the report is built, before the run finishes (to store what it learned).
    after_report: Callable[[], None] | None = None


def run_insights(
    session: Session,
    job: ReprocessJob,
    attempt: int,
    tools: RunTools,
    still_ours: Callable[[], bool],
    checkpoint: Callable[[], None],
) -> None:
    """Embed what is new, group it, build the report and finish the job (commits at checkpoints)."""
    run = session.get(InsightsRun, job.id)
    assert run is not None
    if _another_running(session, job):
        # Two runs placing the same new vectors would start duplicate groups: wait for it.
        release_attempt(
            session, JobKind.REPROCESS, job.id, attempt, AttemptOutcome.REQUEUED,
            due_in=WAIT_FOR_OTHER_S, reason="another insights run is computing", wait=True,
        )  # fmt: skip
        return
    previous = run.since - (run.until - run.since)
    embedder = tools.embedder

    def progress(stage: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            if not still_ours():
                raise _Lost
            _progress(session, job.id, attempt, stage, done, total)
            checkpoint()

        return report

    try:
        missing = missing_vectors(session, embedder.name, previous, run.until)
        progress("embedding")(0, len(missing))
        embed_questions(session, embedder, missing, progress("embedding"))
        groups = place_vectors(session, embedder.name, embedder.dimension, progress("grouping"))
        progress("report")(0, 1)
        report = compute_report(
            session,
            run.since,
            run.until,
            catalogue=tools.catalogue(),
            groups=groups,
            closest=tools.closest,
            explain=tools.explain,
        )
    except _Lost:
        session.rollback()
        return
    if tools.after_report is not None:
        tools.after_report()
    body = {**report.to_dict(), "run_id": str(job.id)}
    if finish_attempt(session, JobKind.REPROCESS, job.id, attempt, JobStatus.COMPLETED):
        session.execute(
            update(InsightsRun)
            .where(InsightsRun.id == job.id)
            .values(stage="done", processed=1, total=1, report=body, computed_at=report.computed_at)
        )


def _another_running(session: Session, job: ReprocessJob) -> bool:
    """Whether an insights run that started before this one still holds its lease."""
    mine = (job.started_at, str(job.id))
    others = session.execute(
        select(ReprocessJob.id, ReprocessJob.started_at).where(
            ReprocessJob.operation == INSIGHTS,
            ReprocessJob.status == JobStatus.IN_PROGRESS.value,
            ReprocessJob.id != job.id,
            ReprocessJob.lease_expires_at > utcnow(),
        )
    ).all()
    return any((started, str(other)) < mine for other, started in others if started)


class _Lost(Exception):
    """The run's lease went to another worker: stop without writing."""


def _progress(
    session: Session, job_id: uuid.UUID, attempt: int, stage: str, done: int, total: int
) -> None:
    # Written only while this attempt still holds the job.
    owned: Any = session.execute(
        fenced_update(ReprocessJob, job_id, attempt).values(worker=ReprocessJob.worker)
    )
    if owned.rowcount:
        session.execute(
            update(InsightsRun)
            .where(InsightsRun.id == job_id)
            .values(stage=stage, processed=done, total=total)
        )
