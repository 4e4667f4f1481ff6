"""An insights run as the worker drives it: progress, the report, and one run at a time."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.admin.insights import current_report, latest_report
from common.admin.insights.computing import RunTools, run_insights
from common.admin.insights.runs import INSIGHTS, run_body
from common.book.retrieval.embeddings import LocalMiniLM
from common.jobs.lifecycle import claim_job
from common.platform.models import (
    InsightsGroup,
    InsightsRun,
    JobKind,
    QuestionVector,
    ReprocessJob,
)
from tests.common.admin.insights.seed import CATALOGUE, SINCE, UNTIL, seed

EMBEDDER = LocalMiniLM(threads=1)


def queued_run(session: Session) -> ReprocessJob:
    job = ReprocessJob(operation=INSIGHTS, request_hash=uuid.uuid4().hex)
    session.add(job)
    session.flush()
    session.add(InsightsRun(id=job.id, since=SINCE, until=UNTIL))
    session.flush()
    return job


def claimed(session: Session, job: ReprocessJob) -> ReprocessJob:
    row = claim_job(session, JobKind.REPROCESS, job.id, "test-worker", 60)
    assert isinstance(row, ReprocessJob)
    return row


def test_a_run_reports_progress_then_the_report(session: Session) -> None:
    seed(session)
    job = claimed(session, queued_run(session))
    seen: list[tuple[str, int, int]] = []
    current = [job]

    def checkpoint() -> None:
        run = session.get(InsightsRun, current[0].id, populate_existing=True)
        assert run is not None
        seen.append((run.stage, run.processed, run.total))

    tools = RunTools(embedder=EMBEDDER, catalogue=lambda: CATALOGUE)
    run_insights(session, job, job.attempts, tools, lambda: True, checkpoint)
    assert seen[0] == ("embedding", 0, 8)
    assert ("embedding", 8, 8) in seen and ("grouping", 8, 8) in seen
    run = session.get(InsightsRun, job.id, populate_existing=True)
    assert run is not None
    body = run_body(run, session.get(ReprocessJob, job.id, populate_existing=True))  # type: ignore[arg-type]
    assert body["status"] == "completed" and body["stage"] == "done"
    assert body["report"]["totals"]["questions"] == 7
    assert session.scalar(select(func.count()).select_from(QuestionVector)) == 8
    latest = latest_report(session)
    assert latest is not None and latest.run_id == str(job.id)
    assert current_report(session, SINCE, UNTIL) == latest

    again = claimed(session, queued_run(session))
    current[0] = again
    seen.clear()
    run_insights(session, again, again.attempts, tools, lambda: True, checkpoint)
    assert seen[0] == ("embedding", 0, 0)  # nothing new to embed
    groups = session.scalar(select(func.count()).select_from(InsightsGroup))
    assert groups is not None and 0 < groups < 8


def test_a_second_run_waits_for_the_one_computing(session: Session) -> None:
    first = claimed(session, queued_run(session))
    second = claimed(session, queued_run(session))
    tools = RunTools(embedder=EMBEDDER, catalogue=lambda: CATALOGUE)
    run_insights(session, second, second.attempts, tools, lambda: True, lambda: None)
    waiting = session.get(ReprocessJob, second.id, populate_existing=True)
    assert waiting is not None
    assert (waiting.status, waiting.attempts, waiting.waits) == ("queued", 0, 1)
    assert waiting.due_at is not None
    run_insights(session, first, first.attempts, tools, lambda: True, lambda: None)
    done = session.get(ReprocessJob, first.id, populate_existing=True)
    assert done is not None and done.status == "completed"
