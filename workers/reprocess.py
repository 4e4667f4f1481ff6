"""Running reprocess jobs: an operator's bulk retry, or an insights run."""

from __future__ import annotations

import logging
import uuid

from common.admin.insights.runs import INSIGHTS
from common.admin.operator_jobs import FoundJob, restart_stream
from common.admin.reprocess import run_bulk_retry
from common.jobs.lifecycle import claim_job
from common.platform.db import session_scope
from common.platform.models import JobKind, ReprocessJob
from workers.insights import run_insights_job
from workers.resources import WorkerResources

log = logging.getLogger(__name__)


def run_reprocess_job(res: WorkerResources, job_id: uuid.UUID) -> None:
    """Run one reprocess job to completion; safe to call again for the same job."""
    lease = res.retry_policy.job_lease_s
    with session_scope(res.sessions) as session:
        job = claim_job(session, JobKind.REPROCESS, job_id, res.worker_name, lease)
        attempt = job.attempts if job is not None else None
    if attempt is None:
        log.info("reprocess job %s is not runnable (finished, running or not due)", job_id)
        return
    res.leases.hold(JobKind.REPROCESS, job_id, attempt)
    try:
        with session_scope(res.sessions) as session:
            row = session.get(ReprocessJob, job_id)
            assert row is not None
            if row.operation == INSIGHTS:
                run_insights_job(res, session, row, attempt)
                return
            run_bulk_retry(
                session,
                row,
                attempt,
                on_requeued=lambda found: _tell_reader(res, found),
                still_ours=lambda: not res.leases.lost(JobKind.REPROCESS, job_id),
                checkpoint=session.commit,  # a batch's retries and progress, one unit each
            )
    finally:
        res.leases.release(JobKind.REPROCESS, job_id)


def _tell_reader(res: WorkerResources, found: FoundJob) -> None:
    # A RedisError leaves this job as it was (see run_bulk_retry): counted as skipped.
    restart_stream(res.events, found)
