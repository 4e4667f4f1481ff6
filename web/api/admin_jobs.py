"""The operator's reprocessing queues: see every queue and job, retry, cancel, bulk-retry, audit."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from flask import Response, jsonify
from flask_openapi3.types import ResponseDict
from redis import RedisError

from common.accounts.account_facts import account_changed
from common.accounts.users import get_user
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
from common.admin.reprocess import queue_bulk_retry, reprocess_body
from common.admin.schemas import (
    AdminList,
    AdminObject,
    AnyJobPath,
    AuditQuery,
    BulkRetryRequest,
    JobListQuery,
    RoleRequest,
    UserPath,
)
from common.jobs.feedback import feedback_of_job
from common.platform.after_commit import commit
from common.platform.api_types import IdempotencyHeader, Problem
from common.platform.models import ChatJob, JobKind, JobStatus
from web.admin_serializers import admin_job_body, admin_job_detail, audit_body, list_body
from web.audit import audited
from web.resources import db, resources
from web.security import admin_blueprint, current_user_id

bp = admin_blueprint("admin_jobs", __name__)
_ERRORS: ResponseDict = {401: Problem, 403: Problem, 422: Problem, 503: Problem}


@bp.get("/queues", responses={200: AdminList, **_ERRORS})
def queues() -> Response:
    """Per queue: broker depth, oldest waiting age, in progress, dead letters, live workers."""
    return jsonify(queue_overview(db(), resources().redis))


@bp.get("/jobs", responses={200: AdminList, **_ERRORS})
def jobs(query: JobListQuery) -> Response:
    """Chat, ingest and reprocess jobs, newest first; page with `after` = the last id."""
    found, has_more = list_jobs(db(), query.to_filters(), query.limit, query.after)
    return jsonify(list_body([admin_job_body(f) for f in found], has_more))


@bp.get("/dlq", responses={200: AdminList, **_ERRORS})
def dead_letters(query: JobListQuery) -> Response:
    """Dead letters: failed jobs a retry may fix, with their last error."""
    filters = query.model_copy(update={"dead": True}).to_filters()
    found, has_more = list_jobs(db(), filters, query.limit, query.after)
    return jsonify(list_body([admin_job_body(f) for f in found], has_more))


@bp.get("/jobs/<uuid:job_id>", responses={200: AdminObject, 404: Problem, **_ERRORS})
def job(path: AnyJobPath) -> Response:
    """One job of any kind with its attempts history (outcomes, errors, traceback summaries)."""
    found = find_job(db(), path.job_id)
    job = found.job
    feedback = feedback_of_job(db(), job) if isinstance(job, ChatJob) else None
    return jsonify(admin_job_detail(found, attempts_of(db(), found), feedback))


@bp.post(
    "/jobs/<uuid:job_id>/retry", responses={200: AdminObject, 404: Problem, 409: Problem, **_ERRORS}
)
def retry(path: AnyJobPath) -> Response:
    """Run a failed, dead or cancelled job again as a new attempt; its history stays."""
    with audited("job.retry", "job", str(path.job_id)) as note:
        found = retry_job(db(), path.job_id)
        note.detail["kind"] = found.kind.value
        # Before the commit: without Redis the retry fails (503) and the job stays as it was.
        restart_stream(resources().events, found)
    db().commit()
    return jsonify(admin_job_body(found))


@bp.post(
    "/jobs/<uuid:job_id>/cancel",
    responses={200: AdminObject, 404: Problem, 409: Problem, **_ERRORS},
)
def cancel(path: AnyJobPath) -> Response:
    """Cancel a queued or running job; a running chat job stops streaming within a second."""
    with audited("job.cancel", "job", str(path.job_id)) as note:
        found = cancel_job(db(), path.job_id)
        note.detail["kind"] = found.kind.value
    db().commit()
    if found.kind == JobKind.CHAT:
        # Without Redis the worker still stops, at its next lease renewal.
        with contextlib.suppress(RedisError):
            resources().events.request_cancel(found.job.id)
        _tell_reader(found.job.id, "done", {"status": JobStatus.CANCELLED.value})
    return jsonify(admin_job_body(found))


@bp.post("/jobs/retry", responses={202: AdminObject, **_ERRORS})
def bulk_retry(body: BulkRetryRequest, header: IdempotencyHeader) -> tuple[Response, int]:
    """Retry every job the filters match, as a reprocess job; `dry_run` only counts."""
    filters = body.to_filters()
    with audited("jobs.bulk_retry", "reprocess_job", None, filters=filters.as_dict()) as note:
        job, replayed = queue_bulk_retry(
            db(),
            resources().celery,
            filters,
            dry_run=body.dry_run,
            requested_by=current_user_id(),
            idempotency_key=header.idempotency_key,
        )
        commit(db())  # inside the audit: a refused send is audited as failed
        note.detail.update(reprocess_job=str(job.id), dry_run=body.dry_run, replayed=replayed)
    response = jsonify(reprocess_body(job))
    response.headers["Location"] = f"/v1/admin/jobs/{job.id}"
    response.headers["Retry-After"] = "1"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


@bp.get("/audit", responses={200: AdminList, **_ERRORS})
def audit(query: AuditQuery) -> Response:
    """Who did what to which job, document, user or setting; newest first."""
    entries, has_more = audit_page(db(), query)
    return jsonify(list_body([audit_body(e) for e in entries], has_more))


@bp.post("/users/<uuid:user_id>/role", responses={200: AdminObject, 404: Problem, **_ERRORS})
def set_role(path: UserPath, body: RoleRequest) -> Response:
    """Make an account an admin, or a reader again (the new role applies to new tokens)."""
    with audited("user.role", "user", str(path.user_id), role=body.role) as note:
        user = get_user(db(), path.user_id)
        note.detail["previous"] = user.role
        user.role = body.as_role().value
        account_changed(db(), resources().redis, [user.id])  # counts on the next request
    return jsonify({"id": str(user.id), "object": "user", "email": user.email, "role": user.role})


def _tell_reader(job_id: uuid.UUID, event: str, data: dict[str, Any]) -> None:
    with contextlib.suppress(RedisError):  # the stream also learns from the job's row
        resources().events.publish(job_id, event, data)
