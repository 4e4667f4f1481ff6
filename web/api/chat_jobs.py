"""Chat jobs: submit, read (with long-poll), stream events, cancel."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify, request, stream_with_context
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.types import ResponseDict
from redis import RedisError

from common.chat_jobs import cancel_chat_job, get_chat_job, queue_chat_job
from common.db import session_scope
from common.models import JobStatus
from common.schemas import ChatJobCreate, ChatJobOut, IdempotencyHeader, JobPath, Problem, WaitQuery
from web.job_events import job_event_stream, wait_for_job
from web.problems import REDIS_ERRORS
from web.resources import db, resources
from web.security import BEARER, current_user_id, require_access_token
from web.serializers import chat_job_body

log = logging.getLogger(__name__)
bp = APIBlueprint(
    "chat_jobs",
    __name__,
    url_prefix="/v1/chat/jobs",
    abp_tags=[Tag(name="chat jobs")],
    abp_security=BEARER,
)
# Authenticate before flask-openapi3 validates the body: signed-out callers get 401, not 422.
bp.before_request(require_access_token)
_ERRORS: ResponseDict = {401: Problem, 404: Problem, 422: Problem, 503: Problem}


@bp.post("", responses={202: ChatJobOut, 400: Problem, **_ERRORS})
def submit(body: ChatJobCreate, header: IdempotencyHeader) -> tuple[Response, int]:
    """Queue a question; poll the Location or stream its events."""
    res = resources()
    job, replayed = queue_chat_job(
        db(), res.celery, res.events, current_user_id(), body, header.idempotency_key
    )
    response = jsonify(chat_job_body(job))
    response.headers["Location"] = f"/v1/chat/jobs/{job.id}"
    response.headers["Retry-After"] = "1"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 202


@bp.get("/<job_id>", responses={200: ChatJobOut, **_ERRORS})
def read(path: JobPath, query: WaitQuery) -> Response:
    """The job; `?wait=N` holds the request until it finishes or N seconds pass."""
    session = db()
    job = get_chat_job(session, current_user_id(), path.job_id)
    if query.wait > 0 and not job.job_status.is_terminal:
        session.rollback()  # release the connection while we wait
        try:
            wait_for_job(resources().events, job.id, query.wait)
        except REDIS_ERRORS:
            # Nothing to wait on without Redis: a finished row is still an answer, else 503.
            session.refresh(job)
            if not job.job_status.is_terminal:
                raise
        job = get_chat_job(session, current_user_id(), path.job_id)
        session.refresh(job)
    return jsonify(chat_job_body(job))


@bp.get("/<job_id>/events", responses=_ERRORS)
def events(path: JobPath) -> Response:
    """Server-Sent Events for the job; send Last-Event-ID to resume."""
    session = db()
    job = get_chat_job(session, current_user_id(), path.job_id)
    after = request.headers.get("Last-Event-ID") or request.args.get("starting_after") or "0-0"
    snapshot = chat_job_body(job)
    session.rollback()
    user_id, res = current_user_id(), resources()

    def reload() -> dict[str, Any]:
        with session_scope(res.sessions) as fresh:
            return chat_job_body(get_chat_job(fresh, user_id, job.id))

    stream = job_event_stream(res.events, job.id, after, snapshot, reload)
    return Response(
        stream_with_context(stream),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@bp.post("/<job_id>/cancel", responses={200: ChatJobOut, 409: Problem, **_ERRORS})
def cancel(path: JobPath) -> Response:
    """Cancel a queued or running job."""
    session, res = db(), resources()
    was_active = not get_chat_job(session, current_user_id(), path.job_id).job_status.is_terminal
    job = cancel_chat_job(session, current_user_id(), path.job_id)
    session.commit()
    if was_active:
        try:
            res.events.request_cancel(job.id)
            res.events.publish(job.id, "done", {"status": JobStatus.CANCELLED.value})
        except RedisError:
            log.warning("could not publish cancellation of %s", job.id, exc_info=True)
    return jsonify(chat_job_body(job))
