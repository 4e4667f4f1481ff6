"""`bookchat admin ...`: queues, jobs, retries, cancels and the audit log, from a shell.

Each command calls the same functions as the operator's HTTP API, with a database session of
its own, records every action in the audit log as `cli:<os user>`, and prints a table (or,
with --json, exactly what the API would return).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis import RedisError

from cli.admin_books import books, remove_book
from cli.admin_insights import insights
from cli.admin_views import audit_table, job_detail, jobs_table, queues_table
from cli.client import require_worker
from cli.operator import Operator, plain_errors
from cli.terminal import safe_json
from common.admin.audit import audit_page
from common.admin.operator_jobs import (
    attempts_of,
    cancel_job,
    find_job,
    list_jobs,
    restart_stream,
    retry_job,
)
from common.admin.queue_overview import queue_overview
from common.admin.reprocess import get_reprocess_job, queue_bulk_retry, reprocess_body
from common.admin.schemas import AuditQuery, BulkRetryRequest, JobListQuery
from common.jobs.queue import REPROCESS_QUEUE
from common.platform.after_commit import commit
from common.platform.db import session_scope
from common.platform.errors import InvalidInput
from common.platform.models import FINISHED_STATUSES, JobKind, JobStatus
from common.platform.settings import get_settings
from web.admin_serializers import admin_job_body, admin_job_detail, audit_body, list_body

# What the operator typed, for fields whose option is not simply --field-name.
OPTION_NAMES = {"error_code": "--error", "target_id": "--target"}
FINISHED = {status.value for status in FINISHED_STATUSES}
WAIT_EXIT = 2  # --wait ran out of time (as `bookchat ingest` does)


def run_admin(args: argparse.Namespace) -> int:
    """Run one `bookchat admin` subcommand."""
    with plain_errors(OPTION_NAMES):
        return COMMANDS[args.admin_command](Operator.open(get_settings()), args)


def _emit(args: argparse.Namespace, body: dict[str, Any], text: Callable[[], str]) -> None:
    print(safe_json(body) if args.json else text())


def _job_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a job id (a UUID as `admin jobs` lists)") from exc


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    values = {
        "status": getattr(args, "status", None),
        "kind": args.kind,
        "user": args.user,
        "error_code": args.error,
        "since": args.since,
        "dead": args.dead or None,
    }
    return {name: value for name, value in values.items() if value is not None}


def queues(op: Operator, args: argparse.Namespace) -> int:
    """Per queue: broker depth, oldest waiting, in progress, dead letters, live workers."""
    client = op.redis()
    with session_scope(op.sessions) as session:
        overview = queue_overview(session, client)
    _emit(args, overview, lambda: queues_table(overview))
    return 0


def jobs(op: Operator, args: argparse.Namespace, dead: bool = False) -> int:
    """Jobs of every kind, newest first (only dead letters with `dead`)."""
    paging = {"limit": args.limit, "after": args.after}
    values = {**_filters(args), **{k: v for k, v in paging.items() if v is not None}}
    query = JobListQuery.model_validate({**values, **({"dead": True} if dead else {})})
    with session_scope(op.sessions) as session:
        found, has_more = list_jobs(session, query.to_filters(), query.limit, query.after)
        page = list_body([admin_job_body(f) for f in found], has_more)
    _emit(args, page, lambda: jobs_table(page))
    return 0


def dead_letters(op: Operator, args: argparse.Namespace) -> int:
    """Failed jobs a retry may fix, with their last error."""
    return jobs(op, args, dead=True)


def show(op: Operator, args: argparse.Namespace) -> int:
    """One job of any kind with its attempts."""
    job_id = _job_id(args.job_id)
    with session_scope(op.sessions) as session:
        found = find_job(session, job_id)
        detail = admin_job_detail(found, attempts_of(session, found))
    _emit(args, detail, lambda: job_detail(detail))
    return 0


def retry(op: Operator, args: argparse.Namespace) -> int:
    """Retry one failed or cancelled job, or (with --failed) every job the filters match."""
    bulk_only = [f"--{name}" for name in ("since", "error", "kind", "user") if getattr(args, name)]
    bulk_only += [flag for flag, on in (("--dead", args.dead), ("--dry-run", args.dry_run)) if on]
    if args.failed:
        if args.job_id:
            raise InvalidInput("give a job ID or --failed with filters, not both")
        return _bulk_retry(op, args)
    if not args.job_id:
        raise InvalidInput("give a job ID, or --failed and filters (--since, --error, --kind)")
    if bulk_only or args.wait:
        raise InvalidInput(f"{', '.join(bulk_only or ['--wait'])} go with --failed, not a job ID")
    job_id = _job_id(args.job_id)
    events = op.events()  # connects before anything changes: exit 2 if bookchat is not running
    with op.audited("job.retry", "job", str(job_id)) as action:
        found = retry_job(action.session, job_id)
        action.detail["kind"] = found.kind.value
        # Before the commit: a fresh stream (and no leftover cancel flag), or no retry at all.
        restart_stream(events, found)
    body = admin_job_body(found)
    _emit(args, body, lambda: f"{found.kind.value} job {job_id} is queued again")
    return 0


def cancel(op: Operator, args: argparse.Namespace) -> int:
    """Cancel a queued or running job; a running chat job stops within a second."""
    job_id = _job_id(args.job_id)
    events = op.events()
    with op.audited("job.cancel", "job", str(job_id)) as action:
        found = cancel_job(action.session, job_id)
        action.detail["kind"] = found.kind.value
    if found.kind == JobKind.CHAT:
        # Without Redis the worker still stops, at its next lease renewal.
        with contextlib.suppress(RedisError):
            events.request_cancel(found.job.id)
            events.publish(found.job.id, "done", {"status": JobStatus.CANCELLED.value})
    body = admin_job_body(found)
    _emit(args, body, lambda: f"{found.kind.value} job {job_id} cancelled")
    return 0


def _bulk_retry(op: Operator, args: argparse.Namespace) -> int:
    request = BulkRetryRequest.model_validate({**_filters(args), "dry_run": args.dry_run})
    filters = request.to_filters()
    require_worker(op.redis(), REPROCESS_QUEUE)
    celery = op.celery()
    with op.audited("jobs.bulk_retry", "reprocess_job", None, filters=filters.as_dict()) as action:
        job, replayed = queue_bulk_retry(
            action.session, celery, filters, dry_run=request.dry_run, requested_by=None
        )
        commit(action.session)  # inside the audit: a refused send is audited as failed
        action.detail.update(reprocess_job=str(job.id), dry_run=request.dry_run, replayed=replayed)
    what = "dry run" if request.dry_run else "bulk retry"
    if not args.json:
        print(f"{what} queued as reprocess job {job.id}")
    if not args.wait:
        if args.json:
            print(safe_json(reprocess_body(job)))
        return 0
    body = _wait_for_reprocess(op, job.id, args.timeout)
    if args.json:
        print(safe_json(body))
    elif body["status"] not in FINISHED:
        print(f"{what} is still {body['status']} after {args.timeout:.0f}s", file=sys.stderr)
    else:
        counts = f"matched {body['matched']}, requeued {body['requeued']}"
        if request.dry_run:
            counts = f"matched {body['matched']}, would requeue {body['would_requeue']}"
        print(f"{what} {body['status']}: {counts}, skipped {body['skipped']}")
    if body["status"] not in FINISHED:
        return WAIT_EXIT
    return 0 if body["status"] == JobStatus.COMPLETED.value else 1


def _wait_for_reprocess(op: Operator, job_id: uuid.UUID, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(op.sessions) as session:
            body = reprocess_body(get_reprocess_job(session, job_id))
        if body["status"] in FINISHED or time.monotonic() >= deadline:
            return body
        time.sleep(0.25)


def audit(op: Operator, args: argparse.Namespace) -> int:
    """Who did what to which job, document, user or setting; newest first."""
    values = {
        "action": args.action,
        "actor": args.actor,
        "target_id": args.target,
        "outcome": args.outcome,
        "since": args.since,
        "limit": args.limit,
        "after": args.after,
    }
    query = AuditQuery.model_validate({k: v for k, v in values.items() if v is not None})
    with session_scope(op.sessions) as session:
        entries, has_more = audit_page(session, query)
        page = list_body([audit_body(e) for e in entries], has_more)
    _emit(args, page, lambda: audit_table(page))
    return 0


COMMANDS: dict[str, Callable[[Operator, argparse.Namespace], int]] = {
    "queues": queues,
    "jobs": jobs,
    "dlq": dead_letters,
    "show": show,
    "retry": retry,
    "cancel": cancel,
    "audit": audit,
    "books": books,
    "remove-book": remove_book,
    "insights": insights,
}
